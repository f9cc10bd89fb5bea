package core

import (
	"context"
	"time"
)

// Loop is periodic background work with a lifecycle: Start runs Pass every interval in a
// goroutine of its own; Shutdown stops it and waits until the pass under way has ended, or
// until its context does. The lease sweeper and the retention job are Loops.
type Loop struct {
	Name  string
	Every time.Duration
	// Immediately runs the first pass at Start instead of after one interval.
	Immediately bool
	Pass        func(ctx context.Context) error
	OnErr       func(error)

	cancel context.CancelFunc
	done   chan struct{}
}

// Start begins the loop; ctx carries values (loggers, traces) and may also end it.
func (l *Loop) Start(ctx context.Context) {
	ctx, l.cancel = context.WithCancel(context.WithoutCancel(ctx))
	l.done = make(chan struct{})
	go func() {
		defer close(l.done)
		t := time.NewTicker(l.Every)
		defer t.Stop()
		if l.Immediately {
			l.pass(ctx)
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				l.pass(ctx)
			}
		}
	}()
}

func (l *Loop) pass(ctx context.Context) {
	if err := l.Pass(ctx); err != nil && ctx.Err() == nil && l.OnErr != nil {
		l.OnErr(err)
	}
}

// Detach returns a context that ends with life but carries the values of from (request ids,
// traces): for work a request starts that must outlive the request itself.
// The caller must call the returned cancel when the work is done.
func Detach(life, from context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(from))
	unhook := context.AfterFunc(life, cancel)
	return ctx, func() { unhook(); cancel() }
}

// Shutdown cancels the loop and waits for it to return, at most until ctx ends.
func (l *Loop) Shutdown(ctx context.Context) error {
	if l.cancel == nil {
		return nil
	}
	l.cancel()
	select {
	case <-l.done:
		return nil
	case <-ctx.Done():
		return E(l.Name+".Shutdown", CodeServiceUnavailable, "background job did not stop in time")
	}
}
