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

// Ended reports whether err is ctx ending a wait: ctx is done and err
// wraps its error. A failure that came first, or with ctx still live, is
// not the cancellation's, whatever it says.
func Ended(ctx context.Context, err error) bool {
	return err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err())
}
