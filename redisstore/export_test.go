package redisstore

// SoloRoundTrips is soloRoundTrips, for the coalescing tests.
const SoloRoundTrips = soloRoundTrips

// QueuedRoundTrips is how many pipelines wait for the next coalesced batch.
func (s *Store) QueuedRoundTrips() int {
	s.co.mu.Lock()
	defer s.co.mu.Unlock()
	return len(s.co.queue)
}
