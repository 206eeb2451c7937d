// Package redisstore is the Redis backend of the shared store
// (plugins.SharedStore): the shared_* host functions of every proxy that
// points at one Redis (single node, Sentinel or Cluster) see one key space,
// so a rate limit or a revocation list holds across proxies.
//
// Semantics match plugins.MemoryStore: per-plugin namespaces, millisecond
// TTLs, and an atomic add whose TTL is set only when it creates the key. See
// RATIONALE.md for the key layout, the add script and the failure policy.
package redisstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sluiceproxy/sluice/host/config"
	"github.com/sluiceproxy/sluice/plugins"
)

// Store is a plugins.SharedStore on Redis. It is safe for concurrent use.
type Store struct {
	client redis.UniversalClient
	prefix string
	call   time.Duration
	budget time.Duration

	mu     sync.RWMutex
	limits map[string]int64 // namespace -> shared_max_bytes
}

var (
	_ plugins.SharedStore = (*Store)(nil)
	_ plugins.Limiter     = (*Store)(nil)
	_ plugins.RemoteStore = (*Store)(nil)
)

// New returns a Store for the [shared] table of a parsed config (Backend
// "redis"). It does not connect: connections are dialled on first use, so
// a proxy starts, and serves routes that do not use shared state, while
// Redis is down.
//
// The Redis client's own messages (dial retries, pool events) go to log at
// debug level; the client library has one logger per process, so the last
// New sets it. Nil log keeps them quiet. Failed calls are reported by the
// plugin that made them, with the error, under its log rate limit.
func New(c config.Shared, log *slog.Logger) (*Store, error) {
	redis.SetLogger(clientLog{log})
	opts := &redis.UniversalOptions{
		Username:              c.Username,
		Password:              c.Password(),
		DB:                    c.DB,
		MasterName:            c.MasterName,
		DialTimeout:           c.DialTimeout.Duration,
		DialerRetries:         1,
		ReadTimeout:           c.ReadTimeout.Duration,
		WriteTimeout:          c.WriteTimeout.Duration,
		ContextTimeoutEnabled: true, // a call's deadline bounds its socket reads and writes
		PoolSize:              c.PoolSize,
		PoolTimeout:           c.CallTimeout.Duration,
		MaxRetries:            -1, // shared_add is not idempotent; the plugin's on_error decides
		DisableIdentity:       true,
	}
	if c.Address != "" {
		opts.Addrs = []string{c.Address}
	} else {
		opts.Addrs = c.Addresses
		opts.IsClusterMode = c.MasterName == ""
	}
	if c.TLS.Enabled {
		tc, err := tlsConfig(c.TLS)
		if err != nil {
			return nil, err
		}
		opts.TLSConfig = tc
	}
	return &Store{
		client: redis.NewUniversalClient(opts),
		prefix: c.KeyPrefix,
		call:   c.CallTimeout.Duration,
		budget: c.HookBudget.Duration,
		limits: make(map[string]int64),
	}, nil
}

// clientLog forwards the Redis client's messages to slog at debug level.
type clientLog struct{ log *slog.Logger }

func (l clientLog) Printf(ctx context.Context, format string, v ...any) {
	if l.log != nil && l.log.Enabled(ctx, slog.LevelDebug) {
		l.log.DebugContext(ctx, "shared store: redis client: "+fmt.Sprintf(format, v...))
	}
}

func tlsConfig(c config.SharedTLS) (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.ServerName,
		InsecureSkipVerify: c.InsecureSkipVerify, //nolint:gosec // an explicit, documented test-only switch
	}
	if c.CA != "" {
		pem, err := os.ReadFile(c.CA)
		if err != nil {
			return nil, fmt.Errorf("redisstore: shared.tls.ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("redisstore: shared.tls.ca: no PEM certificate in %s", c.CA)
		}
		tc.RootCAs = pool
	}
	if c.Cert != "" {
		cert, err := tls.LoadX509KeyPair(c.Cert, c.Key)
		if err != nil {
			return nil, fmt.Errorf("redisstore: shared.tls.cert: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// Close closes every connection.
func (s *Store) Close() error { return s.client.Close() }

// Ping checks that Redis answers within the call deadline.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.call)
	defer cancel()
	if err := s.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redisstore: ping: %w", err)
	}
	return nil
}

// Deadlines implements plugins.RemoteStore.
func (s *Store) Deadlines() (call, perHook time.Duration) { return s.call, s.budget }

// Limit implements plugins.Limiter. Redis keeps one key space for many
// proxies, so a per-proxy count of a namespace's keys and bytes would not
// mean what it says; the store enforces what one write can check on its own:
// no single key and value larger than shared_max_bytes. Redis's maxmemory
// and the keys' TTLs bound the rest (RATIONALE.md).
func (s *Store) Limit(namespace string, maxBytes int64, _ int) {
	s.mu.Lock()
	s.limits[namespace] = maxBytes
	s.mu.Unlock()
}

// entryOverhead matches the memory store's count per key, so one value
// is refused by both backends at the same size.
const entryOverhead = 64

func (s *Store) checkSize(namespace, key string, value int) error {
	s.mu.RLock()
	max, ok := s.limits[namespace]
	s.mu.RUnlock()
	if n := int64(len(key)+value) + entryOverhead; ok && max > 0 && n > max {
		return &plugins.QuotaError{Quota: "shared_max_bytes", Limit: max, Want: n}
	}
	return nil
}

// key is the Redis key of key in namespace: the prefix, the namespace's
// length, the namespace and the key ("sluice:5:guard:ip:10.0.0.1"). The
// length makes the layout unambiguous whatever bytes plugin names and keys
// hold.
func (s *Store) key(namespace, key string) string {
	b := make([]byte, 0, len(s.prefix)+len(namespace)+len(key)+8)
	b = append(b, s.prefix...)
	b = strconv.AppendInt(b, int64(len(namespace)), 10)
	b = append(b, ':')
	b = append(b, namespace...)
	b = append(b, ':')
	b = append(b, key...)
	return string(b)
}

// Get implements plugins.SharedStore.
func (s *Store) Get(ctx context.Context, namespace, key string) ([]byte, bool, error) {
	v, err := s.client.Get(ctx, s.key(namespace, key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("redisstore: get: %w", err)
	}
	return v, true, nil
}

// Set implements plugins.SharedStore.
func (s *Store) Set(ctx context.Context, namespace, key string, value []byte, ttl time.Duration) error {
	if err := s.checkSize(namespace, key, len(value)); err != nil {
		return err
	}
	// Expiration 0 is a SET without PX, which also drops an earlier TTL:
	// "ttl 0 means no expiry", as in memory.
	if err := s.client.Set(ctx, s.key(namespace, key), value, ttl).Err(); err != nil {
		return fmt.Errorf("redisstore: set: %w", err)
	}
	return nil
}

// Delete implements plugins.SharedStore.
func (s *Store) Delete(ctx context.Context, namespace, key string) error {
	if err := s.client.Del(ctx, s.key(namespace, key)).Err(); err != nil {
		return fmt.Errorf("redisstore: delete: %w", err)
	}
	return nil
}

// addScript adds ARGV[1] to the counter KEYS[1] in one round trip and
// returns the new value as decimal text (a Lua number is a double and would
// round counters past 2^53). A key that does not exist is created with the
// TTL ARGV[2] (milliseconds; 0: none); an existing key keeps its own. A
// value that is not a canonical decimal int64, or an add that would leave
// the int64 range, restarts the counter at the delta (INCRBY refuses both),
// keeping the key's TTL.
var addScript = redis.NewScript(`
local created = redis.call('EXISTS', KEYS[1]) == 0
local r = redis.pcall('INCRBY', KEYS[1], ARGV[1])
if type(r) == 'table' and r.err then
  redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
end
if created and tonumber(ARGV[2]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return redis.call('GET', KEYS[1])
`)

// Add implements plugins.SharedStore.
func (s *Store) Add(ctx context.Context, namespace, key string, delta int64, ttl time.Duration) (int64, error) {
	if err := s.checkSize(namespace, key, 20); err != nil {
		return 0, err
	}
	k := s.key(namespace, key)
	v, err := addScript.Run(ctx, s.client, []string{k}, delta, ttl.Milliseconds()).Text()
	if err != nil {
		return 0, fmt.Errorf("redisstore: add: %w", err)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("redisstore: add: the counter holds %q", v)
	}
	return n, nil
}
