package upstream

import "net/url"

// IdleConnsTo reports how many idle keep-alive connections the client
// holds to the http:// target u (0 for https:// targets, whose pool
// http.Transport keeps), for metrics.
func (c *Client) IdleConnsTo(u *url.URL) int {
	hp := c.hosts[u.Host]
	if hp == nil {
		return 0
	}
	hp.mu.Lock()
	defer hp.mu.Unlock()
	return len(hp.idle)
}
