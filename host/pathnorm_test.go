package host

import "testing"

func TestNormalizePath(t *testing.T) {
	reject := pathRules{slashes: slashesReject, merge: true}
	keep := pathRules{slashes: slashesKeep, merge: true}
	decode := pathRules{slashes: slashesDecode, merge: true}
	noMerge := pathRules{slashes: slashesReject}
	for _, tc := range []struct {
		in    string
		rules pathRules
		want  string // "" for an error
	}{
		{"/", reject, "/"},
		{"/a/b", reject, "/a/b"},
		{"/a/b/", reject, "/a/b/"},
		{"/a/./b", reject, "/a/b"},
		{"/a/../b", reject, "/b"},
		{"/a/b/..", reject, "/a/"},
		{"/a/b/.", reject, "/a/b/"},
		{"/..", reject, "/"},
		{"/../..//../a", reject, "/a"},
		{"/.well-known/x", reject, "/.well-known/x"},
		{"/a/.b/..c/...", reject, "/a/.b/..c/..."},
		{"//a///b//", reject, "/a/b/"},
		{"//a///b//", noMerge, "//a///b//"},
		{"/a//../b", noMerge, "/a/b"},
		{"/%2e%2E/a", reject, "/a"},
		{"/%41%7e%2d%5F", reject, "/A~-_"},
		{"/a%3fb%3F", reject, "/a%3Fb%3F"},
		{"/a%20b", reject, "/a%20b"},
		{"/a b", reject, "/a%20b"},
		{"/caf\xc3\xa9", reject, "/caf%C3%A9"},
		{"/a%2fb", reject, ""},
		{"/a%5Cb", reject, ""},
		{"/a\\b", reject, ""},
		{"/a%2fb", keep, "/a%2Fb"},
		{"/a\\b", keep, "/a%5Cb"},
		{"/a%2f..%2fb", keep, "/a%2F..%2Fb"},
		{"/a%2f..%2fb", decode, "/b"},
		{"/a\\..\\b", decode, "/b"},
		{"/%00", reject, ""},
		{"/%0", reject, ""},
		{"/%g0", reject, ""},
		{"a/b", reject, ""},
		{"", reject, ""},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := normalizePath(tc.in, tc.rules)
			if tc.want == "" {
				if err == nil {
					t.Errorf("%q: %q, want an error", tc.in, got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("%q: %q %v, want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func BenchmarkNormalizePath(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := normalizePath("/api/v1/users/12345/profile", pathRules{merge: true}); err != nil {
			b.Fatal(err)
		}
	}
}
