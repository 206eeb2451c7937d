package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// UnmarshalText parses a Go duration such as "2s" or "150ms". Negative
// durations are refused: every duration in the file is a length of time.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(strings.TrimSpace(string(text)))
	if err != nil {
		return fmt.Errorf("invalid duration %q: want a Go duration such as \"2s\" or \"150ms\"", text)
	}
	if v < 0 {
		return fmt.Errorf("invalid duration %q: must not be negative", text)
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration back in Go syntax.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.Duration.String()), nil }

// sizeUnits are the units a Size accepts, longest first so "KiB" is tried
// before "B".
var sizeUnits = []struct {
	name string
	mult int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
	{"B", 1},
}

var errSize = errors.New("want an integer number of bytes, optionally with a unit B, KB, KiB, MB, MiB, GB or GiB")

// UnmarshalText parses a byte count: a plain integer ("65536", also a TOML
// integer) or an integer with a unit ("64KiB", "16 MiB"). KB, MB and GB are
// powers of 1000; KiB, MiB and GiB powers of 1024.
func (s *Size) UnmarshalText(text []byte) error {
	str := strings.TrimSpace(string(text))
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(str, u.name) {
			str = strings.TrimSpace(strings.TrimSuffix(str, u.name))
			mult = u.mult
			break
		}
	}
	n, err := strconv.ParseInt(str, 10, 64)
	if err != nil {
		return fmt.Errorf("invalid size %q: %w", text, errSize)
	}
	if n < 0 {
		return fmt.Errorf("invalid size %q: must not be negative", text)
	}
	if n > (1<<62)/mult {
		return fmt.Errorf("invalid size %q: too large", text)
	}
	*s = Size(n * mult)
	return nil
}

// MarshalText writes the size in the largest binary unit that divides it.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// String returns the size in the largest binary unit that divides it
// exactly, such as "64KiB", or in bytes.
func (s Size) String() string {
	n := int64(s)
	switch {
	case n != 0 && n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + "GiB"
	case n != 0 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "MiB"
	case n != 0 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + "KiB"
	}
	return strconv.FormatInt(n, 10) + "B"
}
