package plugins

import (
	"github.com/sluiceproxy/sluice/host/config"
)

// quotas bound what the host keeps for one plugin's guests (see ABI.md,
// "Limits"). Every host function that copies guest bytes into host memory
// checks the quota it falls under before it copies.
type quotas struct {
	stack         uint64
	stateBytes    int
	stateKeys     int
	sharedBytes   int64
	sharedKeys    int
	logRate       int
	injectCount   int
	injectBytes   int
	localResponse int
	bodyBuffer    int64
	// The limits clients get, which filters get too.
	maxMessage int // server.websocket.max_message_size
	maxHeader  int // server.max_header_bytes
}

// Defaults of the server limits filters share with clients, for a config
// built by hand (Parse fills the same values).
const (
	defaultMaxMessage = 1 << 20
	defaultMaxHeader  = 64 << 10
)

// quotasOf reads a plugin's quotas, with the documented default for each
// one left at zero (a config.Config that did not come from Parse).
func quotasOf(pc config.Plugin, srv config.Server) quotas {
	or := func(v, def int64) int64 {
		if v <= 0 {
			return def
		}
		return v
	}
	return quotas{
		stack:         uint64(or(int64(pc.StackLimit), config.DefaultStackLimit)),
		stateBytes:    int(or(int64(pc.StateMaxBytes), config.DefaultStateMaxBytes)),
		stateKeys:     int(or(int64(pc.StateMaxKeys), config.DefaultStateMaxKeys)),
		sharedBytes:   or(int64(pc.SharedMaxBytes), config.DefaultSharedMaxBytes),
		sharedKeys:    int(or(int64(pc.SharedMaxKeys), config.DefaultSharedMaxKeys)),
		logRate:       int(or(int64(pc.LogRate), config.DefaultLogRate)),
		injectCount:   int(or(int64(pc.MaxInjectedMessages), config.DefaultMaxInjectedMessages)),
		injectBytes:   int(or(int64(pc.MaxInjectedBytes), config.DefaultMaxInjectedBytes)),
		localResponse: int(or(int64(pc.MaxLocalResponse), config.DefaultMaxLocalResponse)),
		bodyBuffer:    max(int64(pc.MaxBodyBuffer), 0),
		maxMessage:    int(or(int64(srv.WebSocket.MaxMessageSize), defaultMaxMessage)),
		maxHeader:     int(or(int64(srv.MaxHeaderBytes), defaultMaxHeader)),
	}
}

// overQuota traps the guest for exceeding the quota whose config key is
// key: ABI misuse, with a message that names the key, so the operator
// knows what to raise and the author what their filter did.
func (in *instance) overQuota(fn, key string, limit, want int64) {
	in.misuse("%s: over the plugin's %s quota of %d (the call needs %d)", fn, key, limit, want)
}

// headerBytes is how many bytes h takes on the wire as "Name: value\r\n"
// lines, the measure max_header_bytes bounds.
func headerBytes(h map[string][]string) int {
	n := 0
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}
