package rp

import (
	"slices"
	"strings"
	"testing"
)

// The log lines below are copied from runs of rpki-client 8.2 and FORT
// 1.5.4 against the Krill data set.

func TestRPKIClientProblems(t *testing.T) {
	cleanStderr := `rpki-client: ta/ta: pulling from https://localhost:3000/ta/ta.cer
rpki-client: ta/ta: loaded from network
rpki-client: https://localhost:3000/rrdp/notification.xml: pulling from network
rpki-client: https://localhost:3000/rrdp/notification.xml: downloading snapshot
rpki-client: https://localhost:3000/rrdp/notification.xml: downloading 1 deltas
rpki-client: https://localhost:3000/rrdp/notification.xml: notification file not modified
rpki-client: https://localhost:3000/rrdp/notification.xml: loaded from network
rpki-client: all files parsed: generating output
`
	cleanStdout := `Processing time 0 seconds (0 seconds user, 0 seconds system)
Skiplist entries: 0
Route Origin Authorizations: 100 (0 failed parse, 0 invalid)
Certificates: 12 (0 invalid)
Manifests: 12 (0 failed parse, 0 stale)
Cleanup: removed 0 files, 24 directories, 0 superfluous
VRP Entries: 100 (100 unique)
`
	tests := []struct {
		name           string
		stdout, stderr string
		want           []string
	}{
		{"clean", cleanStdout, cleanStderr, nil},
		{
			name:   "expired",
			stdout: "Manifests: 1 (1 failed parse, 0 stale)\nVRP Entries: 0 (0 unique)\n",
			stderr: cleanStderr + "rpki-client: localhost/repo/CF62EDAA511CA98C086B0A9B46521D9D663D08B4.mft: CRL has expired\n",
			want: []string{
				"rpki-client: localhost/repo/CF62EDAA511CA98C086B0A9B46521D9D663D08B4.mft: CRL has expired",
				"Manifests: 1 (1 failed parse, 0 stale)",
			},
		},
		{
			name:   "stale manifest",
			stdout: "Manifests: 12 (0 failed parse, 2 stale)\n",
			want:   []string{"Manifests: 12 (0 failed parse, 2 stale)"},
		},
		{
			name:   "untrusted origin",
			stdout: "Certificates: 1 (1 invalid)\n",
			stderr: "rpki-client: https://localhost:3000/ta/ta.cer (127.0.0.1): TLS handshake: certificate verification failed: unable to get local issuer certificate\n" +
				"rpki-client: ta/ta: load from network failed\n" +
				"rpki-client: ta/ta: fallback to cache\n",
			want: []string{
				"rpki-client: https://localhost:3000/ta/ta.cer (127.0.0.1): TLS handshake: certificate verification failed: unable to get local issuer certificate",
				"rpki-client: ta/ta: load from network failed",
				"rpki-client: ta/ta: fallback to cache",
				"Certificates: 1 (1 invalid)",
			},
		},
		{
			name:   "delta failed",
			stderr: "rpki-client: https://localhost:3000/rrdp/notification.xml: delta sync failed, fallback to snapshot\n",
			want:   []string{"rpki-client: https://localhost:3000/rrdp/notification.xml: delta sync failed, fallback to snapshot"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := rpkiClientProblems(tt.stdout, tt.stderr)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFORTProblems(t *testing.T) {
	tests := []struct {
		line    string
		problem bool
	}{
		{"Feb 14 00:00:00 INF: Starting validation.", false},
		{"Feb 14 00:00:00 INF:   incid-mft-stale (The current time is after the nextUpdate field at the manifest): error", false},
		{"Feb 14 00:00:00 INF [Validation]: https://localhost:3000/rrdp/notification.xml: HTTP GET: https://localhost:3000/rrdp/notification.xml", false},
		{"Feb 14 00:00:00 WRN: The validation has begun.", false},
		{"Feb 14 00:00:00 WRN: The validation has successfully ended.", false},
		{"Feb 14 00:00:00 WRN: First validation cycle has begun, wait until the next notification to connect your router(s)", false},
		{"Feb 14 00:00:08 WRN: First validation cycle successfully ended, now you can connect your router(s)", false},
		{"Nov  2 06:23:32 DBG: something", false},
		{"", false},
		{"Nov 22 06:23:32 ERR [Validation]: rsync://localhost/repo/CF62EDAA511CA98C086B0A9B46521D9D663D08B4.mft: CRL is stale/expired", true},
		{"Nov 22 06:23:32 WRN: Validation from TAL '/tmp/exp/fort/tal/ta.tal' yielded error, discarding any other validation results.", true},
		{"Feb 14 00:00:00 WRN [Validation]: /tmp/exp/fort/tal/ta.tal: TAL URI 'https://localhost:3000/ta/ta.cer' could not be downloaded.", true},
		{"Nov 22 06:23:32 ERR: First validation wasn't successful.", true},
		{"Nov 22 06:23:32 CRT: out of memory", true},
		{"free-form text on stderr", true},
	}
	for _, tt := range tests {
		if got := fortProblem(tt.line); got != tt.problem {
			t.Errorf("fortProblem(%q) = %v, want %v", tt.line, got, tt.problem)
		}
	}
}

func TestResultErr(t *testing.T) {
	tests := []struct {
		name string
		res  Result
		want string // "" for nil
	}{
		{"clean", Result{RP: "fort"}, ""},
		{"exit status", Result{RP: "fort", ExitCode: 22}, "fort exited with status 22 and 0 problems"},
		{"problems", Result{RP: "rpki-client", Problems: []string{"a", "b"}}, "rpki-client exited with status 0 and 2 problems\n  a\n  b"},
		{"many problems", Result{RP: "x", Problems: strings.Split("1 2 3 4 5 6 7 8 9 10 11 12", " ")}, "\n  10\n  ... 2 more"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.res.Err()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("got %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
