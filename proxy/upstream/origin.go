package upstream

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Origin returns the origin of an http or https URL (RFC 6454):
// "scheme://host:port", lowercase, with the default port made explicit.
func Origin(rawURL string) (string, error) { return parseOrigin(rawURL) }

func parseOrigin(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrURL, err)
	}
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	switch scheme {
	case "https":
		if port == "" {
			port = "443"
		}
	case "http":
		if port == "" {
			port = "80"
		}
	default:
		return "", fmt.Errorf("%w: %q is not http or https", ErrURL, rawURL)
	}
	if u.Hostname() == "" || u.User != nil {
		return "", fmt.Errorf("%w: %q has no host or has user info", ErrURL, rawURL)
	}
	return scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port), nil
}

// CheckFetchFrom reports whether s is a valid Config.FetchFrom:
// "http://host[:port]" or "https://host[:port]", with nothing else (a
// trailing "/" is tolerated). New refuses what it refuses.
func CheckFetchFrom(s string) error {
	_, _, _, err := parseFetchFrom(s)
	return err
}

// parseFetchFrom splits a FetchFrom into its lowercase scheme, its host
// and its port (the scheme's default when none is given).
func parseFetchFrom(s string) (scheme, host, port string, err error) {
	u, err := url.Parse(s)
	if err == nil {
		scheme = strings.ToLower(u.Scheme)
	}
	switch {
	case err != nil || scheme != "http" && scheme != "https":
		return "", "", "", fmt.Errorf("want http://HOST[:PORT] or https://HOST[:PORT], got %q", s)
	case u.Opaque != "" || u.Hostname() == "":
		return "", "", "", fmt.Errorf("no host in %q: want scheme://HOST[:PORT]", s)
	case u.User != nil:
		return "", "", "", fmt.Errorf("user info in %q: want scheme://HOST[:PORT]", s)
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.ForceQuery, u.Fragment != "":
		return "", "", "", fmt.Errorf("path, query or fragment in %q: want scheme://HOST[:PORT] (requests keep the origin's paths)", s)
	}
	host, port = strings.ToLower(u.Hostname()), u.Port()
	if strings.HasSuffix(u.Host, ":") {
		return "", "", "", fmt.Errorf("empty port in %q: want 1 to 65535", s)
	}
	if port == "" {
		port = "80"
		if scheme == "https" {
			port = "443"
		}
	} else if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return "", "", "", fmt.Errorf("port in %q: want 1 to 65535", s)
	}
	return scheme, host, port, nil
}
