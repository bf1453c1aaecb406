package cancel

import (
	"context"
	"errors"
	"testing"
)

func TestErr(t *testing.T) {
	if err := Err(context.Background()); err != nil {
		t.Errorf("a context not done: %v", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	stop()
	if err := Err(ctx); err != context.Canceled {
		t.Errorf("cancelled without a cause: %v, want context.Canceled itself", err)
	}
	why := errors.New("shutting down")
	ctx, stopCause := context.WithCancelCause(context.Background())
	stopCause(why)
	if err := Err(ctx); !errors.Is(err, context.Canceled) || !errors.Is(err, why) || err.Error() != "context canceled: shutting down" {
		t.Errorf("cancelled with a cause: %v, want both context.Canceled and the cause", err)
	}
}
