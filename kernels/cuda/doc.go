// Package cuda is a CUDA backend for the kernels.Backend interface that needs
// neither cgo nor a CUDA toolkit at build time.
//
// The kernels are CUDA C sources (*.cu) embedded in the binary. At run time
// Open loads the NVIDIA driver library (libcuda) and the run-time compiler
// (libnvrtc) with purego, compiles every module for the GPU present, loads
// the modules through the driver API and launches kernels on one stream.
// Weight matrices are uploaded once, keyed by their Data slice, and stay
// resident. With no driver, no GPU or no NVRTC, the package still builds and
// Available reports why, so callers can fall back to the CPU backend.
//
// The kernels.Backend methods (MatMul, Attend) have no error result: a
// device failure is recorded as a sticky error (see Err) and the output is
// filled with NaN. Every other operation returns its error.
//
// Host-slice methods (MatMul, RMSNorm, ...) copy their inputs up and their
// results back and synchronise. The *Dev methods work on device Buffers only
// and enqueue without synchronising, so a decode step built from them can be
// captured once into a CUDA graph (Capture) and replayed (Graph.Launch).
package cuda
