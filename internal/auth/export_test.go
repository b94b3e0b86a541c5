package auth

import "time"

// SetTTL makes c remember keys for d (tests: 0 makes every remembered key
// known but due for a lookup).
func SetTTL(c *Cache, d time.Duration) { c.ttl = d }
