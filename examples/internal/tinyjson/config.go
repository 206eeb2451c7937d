package tinyjson

import "strings"

// Config reads a filter's config object with typed accessors that collect
// the first error, so a configure function reads every key and checks once:
//
//	c, err := tinyjson.NewConfig(raw, "guard: config")
//	size := c.Int("max_size", 0)
//	prefixes := c.Strings("deny_prefixes")
//	if err := c.Done(); err != nil { return err }
//
// Done also reports keys the filter does not know, so a typo in proxy.toml
// ("token" for "tokens") refuses the module instead of being ignored.
type Config struct {
	obj    Value
	prefix string
	used   map[string]bool
	err    error
	// children are the nested tables read with Table, checked by Done.
	children []*Config
}

// NewConfig parses raw, which must be a JSON object. prefix starts every
// error message ("auth: config").
func NewConfig(raw []byte, prefix string) (*Config, error) {
	v, err := Parse(raw)
	if err != nil {
		return nil, Errorf(prefix, err.Error())
	}
	return ObjectConfig(v, prefix)
}

// ObjectConfig reads an already decoded object, e.g. a nested table.
func ObjectConfig(v Value, prefix string) (*Config, error) {
	if v.Kind == Missing {
		v = Value{Kind: Object}
	}
	if v.Kind != Object {
		return nil, Errorf(prefix, "want a table, got "+v.Kind.article())
	}
	return &Config{obj: v, prefix: prefix, used: map[string]bool{}}, nil
}

// ConfigError is a config problem, naming the key.
type ConfigError struct{ Msg string }

func (e *ConfigError) Error() string { return e.Msg }

// Errorf returns a ConfigError "prefix: msg".
func Errorf(prefix, msg string) error { return &ConfigError{Msg: prefix + ": " + msg} }

func (c *Config) get(key string) Value {
	c.used[key] = true
	return c.obj.Get(key)
}

// Fail records an error about key, unless one is recorded already.
func (c *Config) Fail(key, msg string) {
	if c.err == nil {
		c.err = Errorf(c.prefix, key+": "+msg)
	}
}

// Has reports whether key is present.
func (c *Config) Has(key string) bool { return c.get(key).Kind != Missing }

// Value returns key's raw value (Missing when absent).
func (c *Config) Value(key string) Value { return c.get(key) }

// String returns key's string, or def when absent.
func (c *Config) String(key, def string) string {
	v := c.get(key)
	switch v.Kind {
	case Missing:
		return def
	case String:
		return v.Str
	}
	c.Fail(key, "want a string, got "+v.Kind.article())
	return def
}

// Int returns key's whole number, or def when absent.
func (c *Config) Int(key string, def int64) int64 {
	v := c.get(key)
	if v.Kind == Missing {
		return def
	}
	if n, ok := v.Int(); ok {
		return n
	}
	c.Fail(key, "want a whole number")
	return def
}

// Strings returns key's list of strings (nil when absent).
func (c *Config) Strings(key string) []string {
	v := c.get(key)
	if v.Kind == Missing {
		return nil
	}
	if v.Kind != Array {
		c.Fail(key, "want a list of strings, got "+v.Kind.article())
		return nil
	}
	out := make([]string, 0, len(v.Items))
	for _, it := range v.Items {
		if it.Kind != String {
			c.Fail(key, "want a list of strings, found "+it.Kind.article())
			return nil
		}
		out = append(out, it.Str)
	}
	return out
}

// Table returns key's nested table as a Config (empty when absent); its
// errors and unknown keys are reported by this Config's Done.
func (c *Config) Table(key string) *Config {
	sub, err := ObjectConfig(c.get(key), c.prefix+": "+key)
	if err != nil {
		if c.err == nil {
			c.err = err
		}
		sub, _ = ObjectConfig(Value{}, c.prefix+": "+key)
	}
	c.children = append(c.children, sub)
	return sub
}

// Names returns the keys of the table in document order, for tables whose
// keys are names the user chooses (read each with Table or Value).
func (c *Config) Names() []string {
	out := make([]string, 0, len(c.obj.Members))
	for _, m := range c.obj.Members {
		out = append(out, m.Key)
	}
	return out
}

// Done returns the first error recorded, or an error naming keys that were
// never read.
func (c *Config) Done() error {
	if c.err != nil {
		return c.err
	}
	for _, sub := range c.children {
		if err := sub.Done(); err != nil {
			return err
		}
	}
	var unknown []string
	for _, m := range c.obj.Members {
		if !c.used[m.Key] {
			unknown = append(unknown, m.Key)
		}
	}
	if len(unknown) > 0 {
		return Errorf(c.prefix, "unknown key "+strings.Join(unknown, ", "))
	}
	return nil
}
