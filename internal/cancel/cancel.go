// Package cancel names why a context ended, in one error.
package cancel

import (
	"context"
	"errors"
	"fmt"
)

// Err returns ctx's error (nil while ctx is not done), wrapping its cause
// too when that is another error (context.WithCancelCause): callers tell
// a cancellation from a failure by errors.Is(err, ctx.Err()), and the
// cause says why, so the error must answer to both.
func Err(ctx context.Context) error {
	err := ctx.Err()
	if cause := context.Cause(ctx); err != nil && !errors.Is(cause, err) {
		return fmt.Errorf("%w: %w", err, cause)
	}
	return err
}
