//go:build !race

package segment

// storeRelease32 stores v at p with one plain MOV: a release store on
// x86-TSO. A call into assembly is opaque to the compiler, so no store is
// moved across it (see StoreLength). Under the race detector
// store_other.go's atomic store is used, so the detector sees the
// synchronisation.
//
//go:noescape
func storeRelease32(p *int32, v int32)
