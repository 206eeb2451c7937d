package filtertool

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/sluiceproxy/sluice/host/config"
)

// Plugin selects a module and the [[plugin]] settings it runs with.
type Plugin struct {
	// Module is the path of the .wasm file. With Proxy and Name set it may
	// be empty: the plugin's own module is used.
	Module string
	// ConfigFile is a TOML or JSON file (by its extension; TOML otherwise)
	// holding the plugin's config, the table [plugin.config] would hold.
	ConfigFile string
	// Proxy and Name take the settings (config, memory_limit, timeout,
	// on_error, sha256) of the [[plugin]] named Name in the proxy.toml at
	// Proxy. ConfigFile, when also set, replaces its config.
	Proxy, Name string
}

// settings resolves p into the [[plugin]] the loader builds, with its
// module path made absolute.
func (p Plugin) settings() (config.Plugin, error) {
	pc := config.Plugin{Name: "filter", OnError: "deny"}
	if p.Proxy != "" || p.Name != "" {
		if p.Proxy == "" || p.Name == "" {
			return pc, errors.New("filtertool: -proxy and -plugin go together")
		}
		cfg, err := config.Load(p.Proxy)
		if err != nil {
			return pc, err
		}
		found := false
		for _, c := range cfg.Plugins {
			if c.Name == p.Name {
				pc, found = c, true
				break
			}
		}
		if !found {
			return pc, fmt.Errorf("filtertool: %s has no [[plugin]] named %q", p.Proxy, p.Name)
		}
		// As the proxy does: a relative module path is relative to the
		// config file's folder.
		if !filepath.IsAbs(pc.Module) {
			pc.Module = filepath.Join(filepath.Dir(p.Proxy), pc.Module)
		}
		if p.Module != "" {
			pc.Module, pc.SHA256 = p.Module, ""
		}
	} else {
		pc.Module = p.Module
	}
	if pc.Module == "" {
		return pc, errors.New("filtertool: no module: name a .wasm file (or -proxy and -plugin)")
	}
	if p.ConfigFile != "" {
		c, err := readConfigFile(p.ConfigFile)
		if err != nil {
			return pc, err
		}
		pc.Config = c
	}
	return pc, nil
}

// readConfigFile reads a plugin config from a JSON or TOML file.
func readConfigFile(path string) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("filtertool: %w", err)
	}
	var c map[string]any
	if strings.EqualFold(filepath.Ext(path), ".json") {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(&c); err != nil {
			return nil, fmt.Errorf("filtertool: %s: %w", path, err)
		}
		return c, nil
	}
	if _, err := toml.Decode(string(data), &c); err != nil {
		return nil, fmt.Errorf("filtertool: %s: %w", path, err)
	}
	return c, nil
}

// configJSON is the config as the filter receives it.
func configJSON(c map[string]any) ([]byte, error) {
	if c == nil {
		return []byte("{}"), nil
	}
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("filtertool: config cannot be written as JSON: %w", err)
	}
	return b, nil
}

// tomlEncode writes a config table as TOML.
func tomlEncode(w io.Writer, c map[string]any) error {
	if c == nil {
		return nil
	}
	return toml.NewEncoder(w).Encode(c)
}
