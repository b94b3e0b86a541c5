package session

import "time"

// SetRemember makes s resolve a looked-up session from memory for d (tests:
// 0 makes every session found before known but due for a lookup).
func SetRemember(s *Service, d time.Duration) { s.remember = d }
