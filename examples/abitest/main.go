// Command abitest is a Sluice filter that calls every host function of the
// ABI and reports what it saw, so the conformance kit (examples/conformance)
// can check that an SDK reaches each function and that the proxy answers as
// abi/ABI.md says. The Rust version in rust/ behaves byte for byte the same;
// README.md specifies the behaviour both implement.
//
// It is a test fixture, not a filter to deploy: it logs on every request,
// rewrites requests on demand and annotates every WebSocket message.
package main

import (
	"strconv"
	"strings"
	"time"

	sluice "github.com/sluiceproxy/sluice/sdk/go"
)

func init() {
	sluice.NeedRequestBody()
	sluice.NeedResponseBody()
	sluice.OnConfigure(configure)
	sluice.OnRequestHeaders(onRequest)
	sluice.OnUpgrade(onUpgrade)
	sluice.OnResponseHeaders(onResponse)
	sluice.OnMessage(onMessage)
	sluice.OnClose(onClose)
}

func main() {}

// configure refuses a config that asks to be refused, so the kit can check
// that a failing configure refuses the module at load time.
func configure(cfg []byte) error {
	if strings.Contains(string(cfg), `"refuse":true`) {
		return errRefused{}
	}
	return nil
}

type errRefused struct{}

func (errRefused) Error() string { return "abitest: config asks to be refused" }

const absent = "<absent>"

// report is an ordered list of "Key: value" lines; the response hook turns
// each into an X-Abi-<Key> response header.
type report struct{ b strings.Builder }

func (r *report) add(key, value string) {
	r.b.WriteString(key)
	r.b.WriteString(": ")
	r.b.WriteString(clean(value))
	r.b.WriteByte('\n')
}

// clean makes v a header value: control bytes become '?'.
func clean(v string) string {
	b := []byte(v)
	for i, c := range b {
		if c < ' ' || c == 0x7f {
			b[i] = '?'
		}
	}
	return string(b)
}

func orAbsent(v string, ok bool) string {
	if !ok {
		return absent
	}
	return v
}

func bytesOrAbsent(v []byte, ok bool) string { return orAbsent(string(v), ok) }

var properties = []struct {
	name string
	p    sluice.Property
}{
	{"Client-Addr", sluice.PropertyClientAddr},
	{"Host", sluice.PropertyHost},
	{"Scheme", sluice.PropertyScheme},
	{"Route", sluice.PropertyRoute},
	{"Request-Id", sluice.PropertyRequestID},
	{"Plugin", sluice.PropertyPlugin},
	{"Protocol", sluice.PropertyProtocol},
}

func lastSegment(path string) string { return path[strings.LastIndexByte(path, '/')+1:] }

func onRequest(req sluice.Request) sluice.Action {
	sluice.LogDebug("abitest: debug")
	sluice.LogInfo("abitest: request " + req.Method() + " " + req.Path())
	sluice.LogWarn("abitest: warn")
	sluice.LogError("abitest: error")

	h := req.Header()
	var r report
	r.add("Method", req.Method())
	r.add("Path", req.Path())
	r.add("Query", req.Query())
	r.add("Config", string(sluice.Config()))
	for _, p := range properties {
		v, ok := sluice.GetProperty(p.p)
		r.add("Prop-"+p.name, orAbsent(v, ok))
	}
	r.add("Clock-Wall", strconv.FormatInt(sluice.Now().UnixNano(), 10))
	m1 := sluice.Nanotime()
	m2 := sluice.Nanotime()
	if m1 > 0 && m2 >= m1 {
		r.add("Clock-Mono", "ok")
	} else {
		r.add("Clock-Mono", "bad")
	}
	r.add("Names", strings.Join(h.Names(), ","))
	if vs := h.Values("X-Abi-In"); len(vs) > 0 {
		r.add("In", strings.Join(vs, "|"))
	} else {
		r.add("In", absent)
	}
	r.add("Big-Len", strconv.Itoa(len(h.Get("X-Abi-Big"))))
	b, err := req.Body()
	r.add("Req-Body", bytesOrAbsent(b, err == nil))

	// Shared state: a counter, its decimal text, the previous request's
	// path, a value with a TTL, and a deleted key.
	r.add("Shared-Hits", strconv.FormatInt(sluice.Shared.Add("hits", 1, 0), 10))
	b, ok := sluice.Shared.Get("hits")
	r.add("Shared-Hits-Text", bytesOrAbsent(b, ok))
	b, ok = sluice.Shared.Get("last")
	r.add("Shared-Last", bytesOrAbsent(b, ok))
	sluice.Shared.Set("last", []byte(req.Path()), 0)
	b, ok = sluice.Shared.Get("ttl")
	r.add("Shared-Ttl", bytesOrAbsent(b, ok))
	if v := h.Get("X-Abi-Ttl-Ms"); v != "" {
		ms, _ := strconv.Atoi(v)
		ttl := time.Duration(ms) * time.Millisecond
		sluice.Shared.Set("ttl", []byte("alive"), ttl)
		r.add("Shared-Ttl-Ctr", strconv.FormatInt(sluice.Shared.Add("ttl-ctr", 1, ttl), 10))
	}
	sluice.Shared.Set("del", []byte("x"), 0)
	sluice.Shared.Delete("del")
	b, ok = sluice.Shared.Get("del")
	r.add("Shared-Deleted", bytesOrAbsent(b, ok))
	b, ok = sluice.Shared.Get("closed")
	r.add("Shared-Closed", bytesOrAbsent(b, ok))

	// Per-request state.
	sluice.State.Set("tmp", []byte("x"))
	b, ok = sluice.State.Get("tmp")
	r.add("State-Tmp", bytesOrAbsent(b, ok))
	sluice.State.Delete("tmp")
	b, ok = sluice.State.Get("tmp")
	r.add("State-Deleted", bytesOrAbsent(b, ok))

	// Changes the upstream sees, some on demand.
	if v, ok := h.Lookup("X-Abi-Set-Method"); ok {
		req.SetMethod(v)
	}
	if v, ok := h.Lookup("X-Abi-Set-Path"); ok {
		req.SetPath(v)
	}
	if v, ok := h.Lookup("X-Abi-Set-Query"); ok {
		req.SetQuery(v)
	}
	if v, ok := h.Lookup("X-Abi-Set-Req-Body"); ok {
		if req.SetBody([]byte(v)) != nil {
			r.add("Set-Req-Body", "failed")
		}
	}
	h.Set("X-Abi-Set", "set")
	h.Add("X-Abi-Add", "1")
	h.Add("X-Abi-Add", "2")
	h.Set("x-abi-lower", "yes")
	h.Remove("X-Abi-Remove")

	if lastSegment(req.Path()) == "respond" {
		// In the request phase, response headers are the pending local
		// response's; send_response adds its own to them.
		local := sluice.Response{}.Header()
		local.Set("X-Abi-Early", "early")
		local.Add("X-Abi-Both", "early")
		r.add("Local-Names", strings.Join(local.Names(), ","))
		return sluice.Respond(418, []string{
			"Content-Type", "text/plain; charset=utf-8",
			"X-Abi-Both", "late",
		}, []byte(r.b.String()))
	}
	if lastSegment(req.Path()) == "replace" {
		sluice.State.Set("replace", []byte("1"))
	}
	sluice.State.Set("report", []byte(r.b.String()))
	return sluice.Continue
}

func onUpgrade(req sluice.Request) sluice.Action {
	if lastSegment(req.Path()) == "refuse" {
		return sluice.Respond(403, []string{"Content-Type", "text/plain"}, []byte("refused by abitest\n"))
	}
	sluice.State.Set("upgrade", []byte(req.Path()+"?"+req.Query()))
	req.Header().Set("X-Abi-Upgrade", "yes")
	return sluice.Continue
}

func onResponse(resp sluice.Response) sluice.Action {
	out := resp.Header()
	req := resp.Request().Header()
	var r report
	r.add("Resp-Status", strconv.Itoa(resp.Status()))
	if v := req.Get("X-Abi-Set-Status"); v != "" {
		n, _ := strconv.Atoi(v)
		resp.SetStatus(n)
	}
	r.add("Resp-Names", strings.Join(out.Names(), ","))
	b, err := resp.Body()
	r.add("Resp-Body-Len", orAbsent(strconv.Itoa(len(b)), err == nil))
	if v, ok := req.Lookup("X-Abi-Set-Resp-Body"); ok {
		if resp.SetBody([]byte(v)) != nil {
			r.add("Set-Resp-Body", "failed")
		}
	}
	if _, ok := sluice.State.Get("replace"); ok {
		return sluice.Respond(502, []string{"X-Abi-Replaced", "yes"}, []byte("replaced\n"))
	}

	saved, _ := sluice.State.Get("report")
	for _, line := range strings.Split(string(saved)+r.b.String(), "\n") {
		if k, v, ok := strings.Cut(line, ": "); ok {
			out.Set("X-Abi-"+k, v)
		}
	}
	out.Set("X-Backend-Set", "new")
	out.Add("X-Backend-Add", "2")
	out.Remove("X-Backend-Remove")
	return sluice.Continue
}

var dirNames = [2]string{"c2u", "u2c"}

func onMessage(m *sluice.Message) sluice.MessageAction {
	n := 1
	if v, ok := sluice.State.Get("n"); ok {
		c, _ := strconv.Atoi(string(v))
		n = c + 1
	}
	sluice.State.Set("n", []byte(strconv.Itoa(n)))

	p := m.Payload()
	if m.Kind == sluice.Binary {
		out := append(append([]byte(nil), p...), byte(m.Direction))
		m.SetPayload(out)
		return sluice.Pass
	}
	text := string(p)
	if m.Direction == sluice.ClientToUpstream {
		cmd, arg, _ := strings.Cut(text, " ")
		switch cmd {
		case "drop":
			return sluice.Drop
		case "close":
			codeText, reason, _ := strings.Cut(arg, " ")
			code, _ := strconv.Atoi(codeText)
			return sluice.Close(code, reason)
		case "inject":
			sluice.Inject(sluice.UpstreamToClient, sluice.Text, []byte("injected to client"))
			sluice.Inject(sluice.ClientToUpstream, sluice.Text, []byte("injected to upstream"))
			sluice.Inject(sluice.UpstreamToClient, sluice.Binary, []byte{0xff, 0x00})
		case "inject-many":
			count, _ := strconv.Atoi(arg)
			for i := 1; i <= count; i++ {
				sluice.Inject(sluice.UpstreamToClient, sluice.Text, []byte("many "+strconv.Itoa(i)))
			}
			return sluice.Drop
		case "inject-invalid-utf8":
			sluice.Inject(sluice.UpstreamToClient, sluice.Text, []byte{0xff})
			return sluice.Drop
		case "state":
			up, ok := sluice.State.Get("upgrade")
			_, hasReport := sluice.State.Get("report")
			sluice.Inject(sluice.UpstreamToClient, sluice.Text, []byte(
				"upgrade="+bytesOrAbsent(up, ok)+" report="+strconv.FormatBool(hasReport)+" n="+strconv.Itoa(n)))
			return sluice.Drop
		case "shared":
			c := sluice.Shared.Add("msgs", 1, 0)
			sluice.Inject(sluice.UpstreamToClient, sluice.Text, []byte("msgs="+strconv.FormatInt(c, 10)))
			return sluice.Drop
		case "props":
			var b strings.Builder
			for i, p := range properties {
				v, ok := sluice.GetProperty(p.p)
				if i > 0 {
					b.WriteByte(' ')
				}
				b.WriteString(p.name + "=" + orAbsent(v, ok))
			}
			sluice.Inject(sluice.UpstreamToClient, sluice.Text, []byte(b.String()))
			return sluice.Drop
		}
	}
	m.SetPayload([]byte(text + " [" + dirNames[m.Direction&1] + " text " + strconv.Itoa(m.Size) + " #" + strconv.Itoa(n) + "]"))
	return sluice.Pass
}

func onClose() {
	sluice.Shared.Add("closed", 1, 0)
}
