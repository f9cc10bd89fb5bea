package core

import "sync"

// WatchCounter counts the watch streams open per project, for the console's "watchers
// connected". Each replica counts the streams it serves; nothing is shared between replicas.
type WatchCounter interface {
	// Opened counts one stream of project; done is called once when it closes.
	Opened(project string) (done func())
	// Connected is how many streams of project are open now.
	Connected(project string) int
}

// WatchCount is the in-memory WatchCounter every Watcher starts with.
type WatchCount struct {
	mu   sync.Mutex
	open map[string]int
}

// Opened implements WatchCounter.
func (c *WatchCount) Opened(project string) func() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open == nil {
		c.open = map[string]int{}
	}
	c.open[project]++
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.open[project]--; c.open[project] <= 0 {
				delete(c.open, project) // a project with no stream costs no memory
			}
		})
	}
}

// Connected implements WatchCounter.
func (c *WatchCount) Connected(project string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.open[project]
}
