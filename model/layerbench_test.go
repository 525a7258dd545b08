package model

import (
	"testing"

	"github.com/edgeseek/edgeseek/kernels"
)

// TestBenchDecodeLayerSmall runs the layer benchmark at small shapes so the
// benchmark path stays correct; its timings are not asserted.
func TestBenchDecodeLayerSmall(t *testing.T) {
	cfg := FlashConfig()
	cfg.Dim, cfg.Heads, cfg.QLoraRank, cfg.OLoraRank, cfg.MoEInter, cfg.Experts = 256, 4, 128, 128, 64, 16
	cfg.IndexHeads, cfg.IndexTopK = 4, 16
	res, err := BenchDecodeLayer(cfg, 4, []int{64, 256}, kernels.NewCPU(2), 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].Kind != "CSA" {
		t.Fatalf("results %+v", res)
	}
	// At 64 tokens 16 entries are visible (all selected); at 256, 64 are visible and top-k keeps 16.
	if res[0].Selected != 16 || res[1].Selected != 16 {
		t.Errorf("selected %d and %d entries, want 16 and 16", res[0].Selected, res[1].Selected)
	}
	if res[1].CacheB <= res[0].CacheB || res[0].WeightB != res[1].WeightB {
		t.Errorf("byte counts: %+v", res)
	}
}
