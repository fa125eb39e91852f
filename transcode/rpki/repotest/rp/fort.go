package rp

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// fortPaths is the file layout of one FORT run in its work directory.
type fortPaths struct {
	talDir, caPath, cache, vrps string
}

// prepareFORT fills a work directory for FORT: the TAL in a directory of
// its own (FORT loads every *.tal of --tal=DIR), a CA directory hashed with
// "openssl rehash" for --http.ca-path (libcurl's CApath), and the cache.
func prepareFORT(ctx context.Context, work string, opts Options) (fortPaths, error) {
	p := fortPaths{
		talDir: filepath.Join(work, "tal"),
		caPath: filepath.Join(work, "capath"),
		cache:  opts.CacheDir,
		vrps:   filepath.Join(work, "vrps.csv"),
	}
	if p.cache == "" {
		p.cache = filepath.Join(work, "cache")
	}
	var err error
	if p.cache, err = absDir(p.cache); err != nil {
		return p, fmt.Errorf("cache: %w", err)
	}
	for _, d := range []string{p.talDir, p.caPath} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return p, err
		}
	}
	name := strings.TrimSuffix(filepath.Base(opts.TAL), ".tal") + ".tal"
	if err := copyFile(filepath.Join(p.talDir, name), opts.TAL, 0o644); err != nil {
		return p, fmt.Errorf("tal: %w", err)
	}
	if err := copyFile(filepath.Join(p.caPath, "ca.pem"), opts.CAFile, 0o644); err != nil {
		return p, fmt.Errorf("ca: %w", err)
	}
	out, err := exec.CommandContext(ctx, "openssl", "rehash", p.caPath).CombinedOutput()
	if err != nil {
		return p, fmt.Errorf("openssl rehash %s: %w: %s", p.caPath, err, out)
	}
	return p, nil
}

// fortArgs are the arguments common to both modes. Logs go to the
// console at level info, so that the validation cycles can be followed
// and every warning and error is seen.
func fortArgs(bin string, p fortPaths) []string {
	return []string{bin,
		"--tal=" + p.talDir,
		"--local-repository=" + p.cache,
		"--rsync.enabled=false",
		"--http.ca-path=" + p.caPath,
		"--output.roa=" + p.vrps,
		"--output.format=csv",
		"--log.output=console",
		"--log.level=info",
		"--validation-log.enabled=true",
		"--validation-log.output=console",
		"--validation-log.level=info",
	}
}

// RunFORT runs FORT once in standalone mode against the TAL of opts and
// returns its VRPs and log.
//
// FORT 1.5.4 keeps its RRDP state (session, serial) in memory only: a
// second standalone run with the same CacheDir downloads the snapshot
// again. Use StartFORT to see FORT apply deltas.
//
// The error is non-nil only when FORT could not be run or timed out; a run
// that validated nothing is a Result whose Err is non-nil.
func RunFORT(ctx context.Context, opts Options) (*Result, error) {
	const op = "run fort"
	if err := opts.check(op); err != nil {
		return nil, err
	}
	work, err := workDir("rp-fort-")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	defer os.RemoveAll(work)
	p, err := prepareFORT(ctx, work, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	bin := opts.Binary
	if bin == "" {
		bin = "fort"
	}
	argv := append(fortArgs(bin, p), "--mode=standalone")
	argv = append(argv, opts.Args...)
	if argv, err = withFakeTime(opts.Time, 1, argv); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	res := &Result{RP: "fort"}
	if err := run(ctx, res, argv); err != nil {
		return res, err
	}
	res.Problems = fortProblems(res.Stdout, res.Stderr)
	readVRPs(res, p.vrps)
	keepOutput(res, filepath.Dir(p.vrps), filepath.Base(p.vrps))
	return res, nil
}
