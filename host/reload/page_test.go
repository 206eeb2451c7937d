package reload

import (
	"encoding/json"
	"io"
	"regexp"
	"strings"
	"testing"

	"github.com/sluiceproxy/sluice/host/testkit"
)

// The status page is self-contained: no script, style, image or font comes
// from anywhere but the page itself, and the CSP header forbids it anyway.
func TestStatusPageIsSelfContained(t *testing.T) {
	page := string(statusPage)
	for _, re := range []string{`(?i)\ssrc\s*=`, `(?i)<link\b`, `(?i)@import`, `(?i)url\(`, `(?i)https?://`} {
		if m := regexp.MustCompile(re).FindString(page); m != "" {
			t.Errorf("the page refers to something outside itself: %q", m)
		}
	}
	e := rlStart(t, rlConf{Stamp: "A", Messages: true})
	resp, err := testkit.Client().Get(e.admin + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") || string(body) != page {
		t.Errorf("GET /: %d %v", resp.StatusCode, resp.Header)
	}
	// Only / is the page: other paths are still 404.
	if resp, err := testkit.Client().Get(e.admin + "/nothing-here"); err != nil || resp.StatusCode != 404 {
		t.Errorf("GET /nothing-here: %v %v", resp, err)
	}
}

// GET /overview reports the serving generation's routes, upstreams and
// reload status.
func TestOverview(t *testing.T) {
	e := rlStart(t, rlConf{Stamp: "A", Messages: true})
	e.write(rlConf{Stamp: "B", Messages: true})
	if code, _ := e.post(""); code != 200 {
		t.Fatalf("reload: %d", code)
	}
	resp, err := testkit.Client().Get(e.admin + "/overview")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var o Overview
	if err := json.NewDecoder(resp.Body).Decode(&o); err != nil {
		t.Fatal(err)
	}
	if o.Generation != 2 || o.Reload.LastResult != Loaded || len(o.Routes) == 0 || len(o.Upstreams) == 0 {
		t.Fatalf("overview %+v", o)
	}
	r := o.Routes[0]
	if len(r.Plugins) != 1 || r.Plugins[0] != "stamp" || r.Upstream == "" {
		t.Errorf("route %+v", r)
	}
	if tg := o.Upstreams[0].Targets; len(tg) != 1 || !tg[0].Up || tg[0].URL != e.backend {
		t.Errorf("targets %+v, want %s up", tg, e.backend)
	}
}
