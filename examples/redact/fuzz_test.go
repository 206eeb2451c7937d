package main

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
)

// redactBoth runs the scanner and the reference scanner on in, as
// onMessage does (JSON first, else text), and fails when they differ in
// anything: JSON or not, changed or not, output.
func redactBoth(t *testing.T, r *redactor, ref *refRedactor, in []byte) {
	t.Helper()
	json, refJSON := r.redactJSON(in), ref.redactJSON(in)
	if !json {
		r.redactText(in)
	}
	if !refJSON {
		ref.redactText(in)
	}
	out, changed := r.result()
	want, refChanged := ref.result()
	if json != refJSON || changed != refChanged || !bytes.Equal(out, want) {
		t.Fatalf("input %q\nJSON %v changed %v: %q\nreference: JSON %v changed %v: %q",
			in, json, changed, out, refJSON, refChanged, want)
	}
}

// splitList splits a comma-separated list, dropping empty names (which
// the config refuses).
func splitList(s string) []string {
	var l []string
	for _, f := range strings.Split(s, ",") {
		if f != "" {
			l = append(l, f)
		}
	}
	return l
}

// FuzzRedact checks the eight-bytes-at-a-time scanner against the
// reference scanner (reference_test.go) on any config and any message.
//
//	go test -run '^$' -fuzz FuzzRedact -fuzztime 2m .
func FuzzRedact(f *testing.F) {
	for _, in := range []string{
		`{"user":"ann","password":"pw1"}`,
		`{"password": 1234, "ssn": {"a": [1, 2]}, "ok": true, "n": null, "f": false}`,
		`{"a":{"b":[{"ssn":"123-45-6789"},{"c":{"password":null}}]}}`,
		"{\n  \"Password\" : \"pw\" ,\n  \"n\": -1.5e3\n}",
		`{"text":"my secret is hunter2","secret":"key stays"}`,
		`{"q":"say \"hi\"\\","password":"a\"b", "t": "\nsecret \u0041secret"}`,
		"the secret is Hunter2, ok; secretary hunter22 _secret secret_ SECRET.",
		`{"password": secret}`,
		`{"name":"Zoë","password":"ünï"} Zoë`,
		"a TOP SECRET plan: top secrets, x-ray, code codes, topsecret",
		`{"user":"alice","password":"hunter2","text":"a secret ` + strings.Repeat("x", 200) + `"}`,
		strings.Repeat("lorem ipsum dolor sit amet, ", 10),
		"[tru, fals, nul, true, false, null, -0.5e+10, 1E5]",
		"  \t\r\n  [ \"secret\" ,\"se cret\",\"s\"]  \n",
		"",
	} {
		f.Add("password,ssn", "secret", "***", []byte(in))
		f.Add("password,ssn", "secret,hunter2", "***", []byte(in))
		f.Add("Password,token", "top secret,x-ray,code,s", `<"x">`, []byte(in))
		f.Add("a,b", "alpha,beta,gamma,delta,epsilon,zeta,#tag,_x,9lives", "", []byte(in))
		f.Add("q", "say \"hi,back\\slash,tab\t,secret", "***", []byte(in))
	}
	f.Fuzz(func(t *testing.T, fields, words, mask string, in []byte) {
		fl, wl := splitList(fields), splitList(words)
		r, err := newRedactor(fl, wl, mask)
		if err != nil {
			t.Skip()
		}
		ref := newRefRedactor(fl, wl, mask)
		redactBoth(t, &r, ref, in)
		// Again with the buffers of the first message, as an instance
		// reuses them.
		redactBoth(t, &r, ref, append(in, " secret"...))
	})
}

// TestMatchesReference runs the scanner and the reference scanner on
// random messages built from the pieces that matter (words in every case,
// separators, quotes, escapes, control and multi-byte characters) with
// configs that use each word-matching strategy (one filter, several, every
// word start, words that hold a quote). The Rust version runs the same
// test (matches_reference).
func TestMatchesReference(t *testing.T) {
	pieces := []string{
		"secret", "SeCrEt", "hunter2", "top", "top secret", "x-ray", "s", "se", "sex",
		"password", "PASSWORD", "ssn", "a", "é", "中", "_", "9", " ", "  ", "\t", "\n",
		",", ":", "[", "]", "{", "}", `"`, `\`, `\"`, `\\`, `\n`, "\x01", "\x7f", "\xff",
		"-", "+", ".", "e", "1", "true", "false", "null", "xxxxxxxxxxxxxxxx", strings.Repeat("y", 70),
		// The neighbours of the word-byte ranges.
		"/", "0", "9", ":", "@", "A", "Z", "[", "^", "`", "a", "z", "{", "\x80",
	}
	configs := [][2]string{
		{"password,ssn", "secret"},
		{"password,ssn", "secret,hunter2"},
		{"ssn", "top secret,x-ray,se,s"},
		{"a,password", "secret,sex,s,é,a"},
		{"x", "alpha,beta,gamma,delta,epsilon,secret,top,9"},
		{"x", "alpha,beta,gamma,delta,epsilon," + strings.Repeat("y", 70)},
		{"x", "say \"hi,back\\slash,tab\t,secret"},
		{"password", ""},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range configs {
		fl, wl := splitList(c[0]), splitList(c[1])
		r, err := newRedactor(fl, wl, "***")
		if err != nil {
			t.Fatal(err)
		}
		ref := newRefRedactor(fl, wl, "***")
		for range 20000 {
			var b strings.Builder
			if rng.IntN(2) == 0 {
				for n := rng.IntN(40); n > 0; n-- {
					b.WriteString(pieces[rng.IntN(len(pieces))])
				}
			} else {
				genJSON(rng, &b, pieces, 0)
			}
			msg := []byte(b.String())
			if len(msg) > 0 && rng.IntN(4) == 0 { // break it somewhere
				msg[rng.IntN(len(msg))] = pieces[rng.IntN(len(pieces))][0]
			}
			redactBoth(t, &r, ref, msg)
		}
	}
}

// genJSON writes a random JSON value: mostly valid, with keys that are
// fields, strings made of pieces (valid or not), numbers, literals and
// random whitespace.
func genJSON(rng *rand.Rand, b *strings.Builder, pieces []string, depth int) {
	spaces := []string{"", "", " ", "\n  ", "\t", "\r\n        "}
	space := func() { b.WriteString(spaces[rng.IntN(len(spaces))]) }
	str := func() {
		b.WriteByte('"')
		for n := rng.IntN(8); n > 0; n-- {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		b.WriteByte('"')
	}
	space()
	switch k := rng.IntN(10); {
	case k < 2 && depth < 4:
		b.WriteByte('{')
		for n := rng.IntN(4); n > 0; n-- {
			space()
			if rng.IntN(2) == 0 {
				b.WriteString([]string{`"password"`, `"SSN"`, `"Password"`, `"a"`, `"pass\"word"`}[rng.IntN(5)])
			} else {
				str()
			}
			space()
			b.WriteByte(':')
			genJSON(rng, b, pieces, depth+1)
			if n > 1 {
				b.WriteByte(',')
			}
		}
		b.WriteByte('}')
	case k < 4 && depth < 4:
		b.WriteByte('[')
		for n := rng.IntN(4); n > 0; n-- {
			genJSON(rng, b, pieces, depth+1)
			if n > 1 {
				b.WriteByte(',')
			}
		}
		b.WriteByte(']')
	case k < 7:
		str()
	case k < 9:
		b.WriteString([]string{"0", "-1", "12345678901234567890", "-1.5e3", "1E+5", "2.5e-10x", "--", "7"}[rng.IntN(8)])
	default:
		b.WriteString([]string{"true", "false", "null", "tru", "nul", "falsey"}[rng.IntN(6)])
	}
	space()
}
