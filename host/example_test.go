package host_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/sluiceproxy/sluice/host"
	"github.com/sluiceproxy/sluice/host/config"
	"github.com/sluiceproxy/sluice/host/filter"
)

// greeter is a filter chain written in Go: it adds a header to every
// request. Chains backed by WebAssembly come from the plugins package.
type greeter struct{}

func (greeter) Hooks() filter.HookSet { return filter.HookRequestHeaders }

func (greeter) OnRequestHeaders(x *filter.Exchange) *filter.Reply {
	x.Request.Header.Set("X-Greeting", "hello from "+x.Route)
	return nil
}

func (greeter) OnUpgrade(*filter.Exchange) *filter.Reply         { return nil }
func (greeter) OnResponseHeaders(*filter.Exchange) *filter.Reply { return nil }
func (greeter) OnClose(*filter.Session)                          {}
func (greeter) OnMessage(*filter.Session, *filter.Message) filter.MessageVerdict {
	return filter.MessageVerdict{}
}

// A proxy for one upstream, with a filter chain on its route.
func ExampleNew() {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "backend got %q", r.Header.Get("X-Greeting"))
	}))
	defer backend.Close()

	cfg, err := config.Parse([]byte(`
[server]
listen = "127.0.0.1:0"

[[upstream]]
name = "app"
targets = ["`+backend.URL+`"]

[[route]]
name = "web"
upstream = "app"
`), "proxy.toml")
	if err != nil {
		fmt.Println(err)
		return
	}
	p, err := host.New(cfg, host.Chains{Routes: map[string]filter.Chain{"web": greeter{}}}, host.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := p.Listen(); err != nil {
		fmt.Println(err)
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error)
	go func() { done <- p.Run(ctx) }() // Run closes the proxy when it returns

	resp, err := http.Get("http://" + p.Addr().String() + "/")
	if err != nil {
		fmt.Println(err)
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, string(body))

	stop()
	<-done
	// Output: 200 backend got "hello from web"
}
