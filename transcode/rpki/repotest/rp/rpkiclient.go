package rp

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
)

// RPKIClientUser is the user rpki-client drops its privileges to when
// started as root.
const RPKIClientUser = "_rpki-client"

// systemCAFile is the CA bundle rpki-client's libtls reads (OpenSSL's
// default certificate file on Debian, a symbolic link to
// /etc/ssl/certs/ca-certificates.crt).
const systemCAFile = "/usr/lib/ssl/cert.pem"

// mountScript runs in a private mount namespace with the arguments CA,
// CACHE, MOUNTPOINT, COMMAND...: it shadows the system CA bundle with CA,
// makes CACHE visible at MOUNTPOINT and execs COMMAND.
const mountScript = `mount --bind "$1" ` + systemCAFile + ` && mount --bind "$2" "$3" && shift 3 && exec "$@"`

// RunRPKIClient runs rpki-client once against the TAL of opts and returns
// its VRPs and log. It needs root: the CA file is bind-mounted over the
// system CA bundle inside a private mount namespace (unshare -m).
//
// The error is non-nil only when rpki-client could not be run or timed
// out; a run that validated nothing is a Result whose Err is non-nil.
func RunRPKIClient(ctx context.Context, opts Options) (*Result, error) {
	const op = "run rpki-client"
	if err := opts.check(op); err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%s: needs root for its mount namespace (unshare -m)", op)
	}
	u, err := user.Lookup(RPKIClientUser)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)

	// The work directory is traversable by _rpki-client; the caller's
	// directories (t.TempDir is 0700) often are not. The cache is
	// bind-mounted into it, so rpki-client never walks the caller's path.
	work, err := workDir("rp-rpki-client-")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	defer os.RemoveAll(work)
	cacheSrc := opts.CacheDir
	if cacheSrc == "" {
		cacheSrc = filepath.Join(work, "cache.tmp")
	}
	if cacheSrc, err = absDir(cacheSrc); err != nil {
		return nil, fmt.Errorf("%s: cache: %w", op, err)
	}
	caFile, err := filepath.Abs(opts.CAFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	cache := filepath.Join(work, "cache")
	out := filepath.Join(work, "out")
	tal := filepath.Join(work, filepath.Base(opts.TAL))
	for _, d := range []string{cache, out} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
	}
	if err := chownTree(cacheSrc, uid, gid); err != nil {
		return nil, fmt.Errorf("%s: cache: %w", op, err)
	}
	if err := os.Chown(out, uid, gid); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if err := copyFile(tal, opts.TAL, 0o644); err != nil {
		return nil, fmt.Errorf("%s: tal: %w", op, err)
	}

	bin := opts.Binary
	if bin == "" {
		bin = "rpki-client"
	}
	// -e /bin/false: the rsync fallback fails at once instead of reaching
	// out. -s 60: rpki-client's own deadline.
	rpArgs := []string{bin, "-v", "-j", "-c", "-s", "60", "-e", "/bin/false", "-t", tal, "-d", cache}
	rpArgs = append(rpArgs, opts.Args...)
	rpArgs = append(rpArgs, out)
	argv := []string{"unshare", "-m", "--propagation", "private", "sh", "-c", mountScript, "sh", caFile, cacheSrc, cache}
	if rpArgs, err = withFakeTime(opts.Time, 1, rpArgs); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	argv = append(argv, rpArgs...)

	res := &Result{RP: "rpki-client"}
	if err := run(ctx, res, argv); err != nil {
		return res, err
	}
	res.Problems = rpkiClientProblems(res.Stdout, res.Stderr)
	readVRPs(res, filepath.Join(out, "csv"))
	keepOutput(res, out, "csv", "json")
	return res, nil
}

// chownTree gives dir and everything below it to uid and gid.
func chownTree(dir string, uid, gid int) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		return os.Lchown(path, uid, gid)
	})
}
