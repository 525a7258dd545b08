package edge

import "github.com/vmihailenco/msgpack/v5"

// protocolMarshalUnchecked encodes without validation, to build bad requests.
func protocolMarshalUnchecked(v any) ([]byte, error) { return msgpack.Marshal(v) }
