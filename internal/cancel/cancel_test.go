package cancel

import (
	"context"
	"errors"
	"fmt"
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

func TestEnded(t *testing.T) {
	live := context.Background()
	ctx, stop := context.WithCancel(live)
	stop()
	other := errors.New("disk on fire")
	for _, c := range []struct {
		ctx  context.Context
		err  error
		want bool
	}{
		{ctx, Err(ctx), true},
		{ctx, fmt.Errorf("open x: %w", context.Canceled), true},
		{ctx, other, false},
		{ctx, nil, false},
		{live, context.Canceled, false}, // not this context's doing
		{ctx, context.DeadlineExceeded, false},
	} {
		if got := Ended(c.ctx, c.err); got != c.want {
			t.Errorf("Ended(ctx done %v, %v) = %v, want %v", c.ctx.Err() != nil, c.err, got, c.want)
		}
	}
}
