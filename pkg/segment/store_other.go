//go:build !amd64 || race

package segment

import "sync/atomic"

// storeRelease32 is sync/atomic's store, sequentially consistent, so more
// than a release store (see StoreLength).
func storeRelease32(p *int32, v int32) { atomic.StoreInt32(p, v) }
