package rp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// runEnv is the environment of the relying parties.
func runEnv() []string {
	return append(os.Environ(), "TZ=UTC")
}

// run runs argv with a deadline from ctx (defaultTimeout when it has
// none), in its own process group, which is killed as a whole when the
// deadline passes.
func run(ctx context.Context, res *Result, argv []string) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultTimeout)
		defer cancel()
	}
	res.Command = argv
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = runEnv()
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.SysProcAttr = childAttr()
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err := cmd.Run()
	res.Elapsed = time.Since(start)
	res.Stdout, res.Stderr = stdout.String(), stderr.String()
	res.ExitCode = cmd.ProcessState.ExitCode()
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("run %s: %w", res.RP, ctxErr)
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return fmt.Errorf("run %s: %w", res.RP, err)
	}
	return nil
}

// readVRPs reads the VRP file an RP wrote, recording a missing or
// unreadable file as a problem.
func readVRPs(res *Result, path string) {
	vrps, err := ReadVRPCSV(path)
	if err != nil {
		res.Problems = append(res.Problems, "harness: "+err.Error())
		return
	}
	res.VRPs = vrps
}

// keepOutput records the named output files of dir in res.Output; missing
// ones are left out (readVRPs reports a missing VRP file).
func keepOutput(res *Result, dir string, names ...string) {
	for _, n := range names {
		if b, err := os.ReadFile(filepath.Join(dir, n)); err == nil {
			if res.Output == nil {
				res.Output = map[string][]byte{}
			}
			res.Output[n] = b
		}
	}
}

// copyFile copies src to dst with mode.
func copyFile(dst, src string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chmod(dst, mode)
}

// workDir creates a temporary directory that other users may traverse.
func workDir(pattern string) (string, error) {
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// absDir makes dir absolute and creates it.
func absDir(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	return dir, os.MkdirAll(dir, 0o755)
}
