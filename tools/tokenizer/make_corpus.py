#!/usr/bin/env python3
"""Assembles the tokenizer parity corpus under testdata/tokenizer/corpus/ (deterministic).

Sources (see testdata/tokenizer/corpus/README.md for licences):
  * source code copied from the Go distribution at GOROOT (BSD-3-Clause);
  * prose generated here from phrase lists written for this project, in English, Chinese,
    Japanese, Korean, Arabic and Russian;
  * generated long runs (spaces, letters, CJK, emoji) that make pieces over 256 bytes;
  * generated stress text: emoji (skin tones, ZWJ sequences, flags), whitespace runs, digits of
    every length, special-token strings inside text, combining marks, rare scripts.
Usage: python3 tools/tokenizer/make_corpus.py [GOROOT]
"""
import os
import random
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "testdata", "tokenizer", "corpus")
GOROOT = sys.argv[1] if len(sys.argv) > 1 else "/usr/local/go"

GO_FILES = [
    "src/fmt/print.go", "src/fmt/scan.go", "src/strings/strings.go", "src/strconv/quote.go",
    "src/unicode/utf8/utf8.go", "src/bufio/bufio.go", "src/sort/sort.go", "src/net/http/request.go",
    "src/encoding/json/decode.go", "src/time/format.go", "src/regexp/syntax/parse.go",
]
OTHER_FILES = [
    "src/runtime/runtime-gdb.py", "lib/wasm/wasm_exec.js", "misc/wasm/wasm_exec.html",
    "src/runtime/cgo/gcc_libinit.c", "src/runtime/cgo/gcc_linux_amd64.c", "src/runtime/asm_amd64.s",
    "src/make.bash", "src/run.bash", "src/crypto/internal/fips140/sha256/sha256block_amd64.s",
]


def copy_sources(name, files):
    parts = []
    for f in files:
        with open(os.path.join(GOROOT, f), encoding="utf-8") as fh:
            parts.append("// ==== go/%s ====\n%s" % (f, fh.read()))
    write(name, "\n".join(parts))


def write(name, text):
    with open(os.path.join(OUT, name), "w", encoding="utf-8", newline="") as fh:
        fh.write(text)


PHRASES = {
    "en": dict(
        subj=["The engineer", "A small model", "My neighbour's cat", "The old library", "Every tokenizer",
              "The committee", "Our team", "A curious student", "The river", "This function", "Nobody",
              "The weather service", "Grandma", "The compiler", "An unexpected guest"],
        verb=["quietly rewrote", "carefully measured", "forgot about", "celebrated", "rejected",
              "translated", "compressed", "borrowed", "painted", "explained", "ignored", "repaired"],
        obj=["the entire manuscript", "three thousand tokens", "a broken umbrella", "the quarterly report",
             "every single byte", "the mountain road", "an ancient recipe", "the unit tests",
             "her favourite song", "the whole internet", "a cup of tea", "the last train"],
        tail=["before sunrise", "without asking anyone", "in less than a minute", "for the third time",
              "while it was raining", "during the long winter", "as if nothing had happened",
              "because the deadline was near", "with remarkable patience", "at the end of the day"],
        end=[".", "!", "?", "...", ";", "."], sep=" ", join=" "),
    "zh": dict(
        subj=["工程师", "这个小模型", "邻居家的猫", "老图书馆", "每个分词器", "委员会", "我们的团队",
              "一位好奇的学生", "那条河", "这个函数", "没有人", "气象台", "奶奶", "编译器"],
        verb=["悄悄地重写了", "仔细测量了", "忘记了", "庆祝了", "拒绝了", "翻译了", "压缩了", "借走了",
              "画了", "解释了", "修好了", "整理了"],
        obj=["整本手稿", "三千个词元", "一把坏雨伞", "季度报告", "每一个字节", "山路", "一份古老的食谱",
             "单元测试", "她最喜欢的歌", "整个互联网", "一杯茶", "最后一班火车"],
        tail=["在日出之前", "没有问任何人", "不到一分钟", "第三次", "在下雨的时候", "在漫长的冬天里",
              "好像什么都没发生过", "因为截止日期快到了", "非常耐心地", "在一天结束的时候"],
        end=["。", "！", "？", "……", "；", "。"], sep="", join=""),
    "ja": dict(
        subj=["エンジニアは", "この小さなモデルは", "隣の猫は", "古い図書館は", "すべてのトークナイザーは",
              "委員会は", "私たちのチームは", "好奇心旺盛な学生は", "その川は", "この関数は", "おばあちゃんは",
              "コンパイラは", "気象庁は"],
        verb=["静かに書き直した", "注意深く測った", "すっかり忘れていた", "お祝いした", "断った", "翻訳した",
              "圧縮した", "借りていった", "描いた", "説明した", "修理した", "片付けた"],
        obj=["原稿をすべて", "三千個のトークンを", "壊れた傘を", "四半期の報告書を", "すべてのバイトを",
             "山道を", "古いレシピを", "ユニットテストを", "彼女の好きな歌を", "お茶を一杯", "最終電車を"],
        tail=["日の出の前に", "誰にも聞かずに", "一分もかからずに", "三回目に", "雨が降っている間に",
              "長い冬のあいだ", "何事もなかったかのように", "締め切りが近かったので", "とても辛抱強く"],
        end=["。", "！", "？", "…", "。"], sep="", join="", order="s t o v"),
    "ko": dict(
        subj=["엔지니어는", "이 작은 모델은", "이웃집 고양이는", "오래된 도서관은", "모든 토크나이저는",
              "위원회는", "우리 팀은", "호기심 많은 학생은", "그 강은", "이 함수는", "할머니는", "컴파일러는"],
        verb=["조용히 다시 썼다", "꼼꼼하게 측정했다", "잊어버렸다", "축하했다", "거절했다", "번역했다",
              "압축했다", "빌려 갔다", "그렸다", "설명했다", "고쳤다", "정리했다"],
        obj=["원고 전체를", "삼천 개의 토큰을", "부러진 우산을", "분기 보고서를", "모든 바이트를", "산길을",
             "오래된 요리법을", "단위 테스트를", "그녀가 좋아하는 노래를", "차 한 잔을", "마지막 기차를"],
        tail=["해가 뜨기 전에", "아무에게도 묻지 않고", "일 분도 안 되어", "세 번째로", "비가 오는 동안",
              "긴 겨울 동안", "아무 일도 없었다는 듯이", "마감이 가까워서", "아주 참을성 있게"],
        end=[".", "!", "?", "...", "."], sep=" ", join=" ", order="s t o v"),
    "ar": dict(
        subj=["المهندس", "النموذج الصغير", "قطة الجيران", "المكتبة القديمة", "كل محلل رموز", "اللجنة",
              "فريقنا", "طالب فضولي", "النهر", "هذه الدالة", "لا أحد", "الجدة", "المترجم"],
        verb=["أعاد كتابة", "قاس بعناية", "نسي", "احتفل بـ", "رفض", "ترجم", "ضغط", "استعار", "رسم",
              "شرح", "أصلح", "رتب"],
        obj=["المخطوطة كاملة", "ثلاثة آلاف رمز", "مظلة مكسورة", "التقرير الفصلي", "كل بايت", "طريق الجبل",
             "وصفة قديمة", "اختبارات الوحدة", "أغنيتها المفضلة", "كوب شاي", "القطار الأخير"],
        tail=["قبل شروق الشمس", "دون أن يسأل أحدا", "في أقل من دقيقة", "للمرة الثالثة", "بينما كانت تمطر",
              "خلال الشتاء الطويل", "كأن شيئا لم يحدث", "لأن الموعد النهائي كان قريبا", "بصبر ملحوظ"],
        end=[".", "!", "؟", "،", "؛", "."], sep=" ", join=" ", order="v s o t"),
    "ru": dict(
        subj=["Инженер", "Маленькая модель", "Соседская кошка", "Старая библиотека", "Каждый токенизатор",
              "Комиссия", "Наша команда", "Любопытный студент", "Река", "Эта функция", "Никто", "Бабушка",
              "Компилятор"],
        verb=["тихо переписал", "аккуратно измерил", "забыл про", "отпраздновал", "отклонил", "перевёл",
              "сжал", "одолжил", "нарисовал", "объяснил", "починил", "разобрал"],
        obj=["всю рукопись", "три тысячи токенов", "сломанный зонт", "квартальный отчёт", "каждый байт",
             "горную дорогу", "старинный рецепт", "модульные тесты", "её любимую песню", "чашку чая",
             "последний поезд"],
        tail=["до рассвета", "никого не спросив", "меньше чем за минуту", "в третий раз", "пока шёл дождь",
              "долгой зимой", "как ни в чём не бывало", "потому что срок был близко", "с удивительным терпением"],
        end=[".", "!", "?", "…", ";", "."], sep=" ", join=" "),
}


def prose(lang, rnd, size):
    p = PHRASES[lang]
    order = p.get("order", "s v o t").split()
    out, n = [], 0
    while n < size:
        para = []
        for _ in range(rnd.randint(2, 7)):
            words = [rnd.choice(p[{"s": "subj", "v": "verb", "o": "obj", "t": "tail"}[k]]) for k in order]
            s = p["sep"].join(words) + rnd.choice(p["end"])
            if rnd.random() < 0.15:  # numbers, dates and quotes inside prose
                s = s[:-1] + p["sep"] + rnd.choice(["%d" % rnd.randint(0, 10**rnd.randint(1, 9)),
                                                   "%d.%02d" % (rnd.randint(0, 999), rnd.randint(0, 99)),
                                                   "2026-%02d-%02d" % (rnd.randint(1, 12), rnd.randint(1, 28)),
                                                   "«%s»" % rnd.choice(p["obj"]), "\"%s\"" % rnd.choice(p["obj"]),
                                                   "(%s)" % rnd.choice(p["tail"])]) + s[-1]
            para.append(s)
        text = p["join"].join(para) + "\n\n"
        out.append(text)
        n += len(text.encode())
    return "".join(out)


SPECIALS = ["<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜▁pad▁｜>", "<｜User｜>", "<｜Assistant｜>",
            "<think>", "</think>", "<｜tool▁calls▁begin｜>", "<｜tool▁sep｜>", "<｜place▁holder▁no▁12｜>",
            "<｜fim▁hole｜>", "<｜begin▁of▁sentence", "｜>", "<｜", "<think", "</think"]
EMOJI = ["😀", "👍", "👍🏻", "👍🏽", "👍🏿", "👨‍👩‍👧‍👦", "👩🏽‍💻", "🧑🏿‍🚀", "🏳️‍🌈", "🇯🇵", "🇺🇸", "🇨🇳",
         "❤️", "✌🏾", "🤌", "🫠", "🪿", "🦀", "😶‍🌫️", "👁️‍🗨️", "🧔‍♀️", "👨🏻‍❤️‍💋‍👨🏼", "#️⃣", "©️", "🔟",
         "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "⚡", "☕", "🍣", "🎉"]
ODD = ["e\u0301", "n\u0303", "\u0915\u094d\u0937", "\u0e01\u0e34\u0e19", "\u05e9\u05b8\u05c1", "\ufeff",
       "\u200b", "\u200d", "\u00a0", "\u3000", "\u2028", "\u0085", "\x0b", "\x0c", "\x00", "\x1b[31m",
       "ｆｕｌｌ－ｗｉｄｔｈ", "½", "²³", "Ⅻ", "٣٤٥", "१२३", "〇", "゠", "・", "゛", "ー", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
       "\U0001e5d0\U0001e5f1", "\U000105c0", "Ꟍꟍ", "\U0001ccf0\U0001ccf5", "\u1b4e", "\u2427",
       "\U00013460", "Ω≈ç√∫", "—", "…", "’", "“quoted”", "«guillemets»", "I'm", "don't", "C++", "a.b.c",
       "$HOME", "@user", "#tag", "x==y", "->", "=>", "::", "/*", "*/", "<<=", "&&", "||", "...", "!!!"]


def stress(rnd, size):
    out, n = [], 0
    ws = [" ", "  ", "   ", "\t", "\t\t", "\n", "\n\n", "\r\n", "\r", " \n", "\n ", " \t\n ", "    ",
          " " * 17, "\t" * 9, "\n" * 7, " " * 200, "\u3000", "\u00a0 ", " \u2028"]
    words = ["hello", "World", "tokenizer", "ΑΒΓ", "Привет", "你好", "こんにちは", "안녕", "مرحبا", "שלום",
             "naïve", "straße", "İstanbul", "ǅ", "ﬁ", "a", "I", "x1", "CamelCase", "snake_case", "кошка"]
    while n < size:
        kind = rnd.random()
        if kind < 0.2:
            s = rnd.choice(EMOJI) * rnd.randint(1, 3)
        elif kind < 0.35:
            s = str(rnd.randint(0, 10 ** rnd.randint(1, 25)))
            if rnd.random() < 0.3:
                s = s + rnd.choice([".", ",", "e", "%", "px"]) + str(rnd.randint(0, 99999))
        elif kind < 0.5:
            s = rnd.choice(SPECIALS)
        elif kind < 0.65:
            s = rnd.choice(ODD)
        else:
            s = rnd.choice(words)
        sep = rnd.choice(ws) if rnd.random() < 0.6 else rnd.choice(["", ",", ".", "!", "?", "-", "(", ")", "\"", "'", ":"])
        piece = s + sep
        out.append(piece)
        n += len(piece.encode())
    return "".join(out)


def digits(rnd):
    lines = []
    for length in range(1, 65):
        for _ in range(6):
            d = "".join(rnd.choice("0123456789") for _ in range(length))
            lines.append(d + rnd.choice([" ", "\n", "x", "。", "abc", ".", "", "\t"]))
        lines.append("١٢٣٤٥٦٧٨٩٠"[: (length % 10) + 1] + " " + "０１２３４５６７８９"[: (length % 10) + 1] + "\n")
    return "".join(lines)


def long_runs(rnd):
    """Pieces longer than 256 bytes, which take the heap path of the Go merge loop."""
    zh = "".join(PHRASES["zh"]["subj"] + PHRASES["zh"]["verb"] + PHRASES["zh"]["obj"])
    ja = "".join(w.rstrip("はを") for w in PHRASES["ja"]["obj"])
    parts = [" " * 1000 + "x", "\t" * 300, "\n" * 400, " \n" * 150, "a" * 700, "ab" * 300, zh[:400], ja,
             "".join(rnd.choice("abcdefghij") for _ in range(900)), "=" * 500, "😀" * 120, "-_" * 200,
             "Ж" * 300, "".join(PHRASES["ru"]["obj"]).replace(" ", ""), "9" * 400, "\u3000" * 100]
    return "\n".join(p + "\n" for p in parts)


def soup(rnd, size):
    """Random mixes of characters from every class the pre-tokenizer distinguishes, so that each
    alternative of the Split patterns meets every kind of neighbour."""
    pool = (list("aZ\u00e9\u0416\u05d0\u0627\u4e00\u9fa5\u3042\u30a2\u30a0\u30fb\u309b\u309d\u3005\u3007\uac00")  # letters, CJK, kana
            + list("\u0301\u0308\u093f\u20dd\ufe0f\U000e0067")  # marks, variation selector, tag
            + list("09\u0663\u00bd\u00b2\u2167\uff11\U0001d7d8")  # numbers
            + list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~\u00a1\u00bf\u2014\u3001\u3002\u00ab\u060c")  # punctuation
            + list("\u00a9\u20ac\u2211\u2192\U0001f600\U0001f3fd\u2764\U0001f1ef")  # symbols
            + list(" \t\n\r\x0b\x0c\x85\xa0\u1680\u2000\u2028\u2029\u202f\u3000")  # white space
            + list("\x00\x1f\x7f\u200b\u200d\u2060\ufeff\ue000\U000f0000"))  # controls, format, private
    out, n = [], 0
    while n < size:
        run = "".join(rnd.choice(pool) for _ in range(rnd.randint(1, 40)))
        out.append(run + rnd.choice(["", " ", "\n", "  ", "\r\n"]))
        n += len(out[-1].encode())
    return "".join(out)


def main():
    os.makedirs(OUT, exist_ok=True)
    copy_sources("go_source.txt", GO_FILES)
    copy_sources("other_source.txt", OTHER_FILES)
    for i, lang in enumerate(["en", "zh", "ja", "ko", "ar", "ru"]):
        write("prose_%s.txt" % lang, prose(lang, random.Random(100 + i), 60000))
    rnd = random.Random(7)
    write("mixed_prose.txt", "".join(prose(rnd.choice(list(PHRASES)), rnd, 300) for _ in range(150)))
    write("stress.txt", stress(random.Random(8), 90000))
    write("digits.txt", digits(random.Random(9)))
    write("long_runs.txt", long_runs(random.Random(10)))
    write("soup.txt", soup(random.Random(11), 60000))


if __name__ == "__main__":
    main()
