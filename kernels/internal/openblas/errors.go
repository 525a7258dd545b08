package openblas

import "errors"

// ErrNotBuilt is returned by every function when the binary was built
// without -tags openblas.
var ErrNotBuilt = errors.New("not built with openblas (build with -tags openblas and libopenblas-dev installed)")
