package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// procs tracks every process the harness starts, by process id, so that a
// failure or Ctrl-C stops exactly those and nothing else.
type procs struct {
	mu   sync.Mutex
	cmds map[int]*exec.Cmd
	done map[int]chan struct{}
}

func newProcs() *procs {
	return &procs{cmds: map[int]*exec.Cmd{}, done: map[int]chan struct{}{}}
}

// start runs argv with its output appended to logPath. Each child gets its own
// process group so that stopping it also stops what it forked (nginx's worker),
// and nothing else. cpu >= 0 pins it to that CPU with taskset.
func (p *procs) start(logPath string, cpu int, env []string, argv ...string) (*exec.Cmd, error) {
	if cpu >= 0 && pinning {
		argv = append([]string{"taskset", "-c", strconv.Itoa(cpu)}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("sluice-bench: %w", err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("sluice-bench: start %s: %w", argv[0], err)
	}
	done := make(chan struct{})
	p.mu.Lock()
	p.cmds[cmd.Process.Pid] = cmd
	p.done[cmd.Process.Pid] = done
	p.mu.Unlock()
	go func() {
		cmd.Wait()
		f.Close()
		close(done)
	}()
	return cmd, nil
}

// exited reports whether the process with this pid has ended.
func (p *procs) exited(pid int) bool {
	p.mu.Lock()
	done := p.done[pid]
	p.mu.Unlock()
	if done == nil {
		return true
	}
	select {
	case <-done:
		return true
	default:
		return false
	}
}

// stop ends the process group of pid: SIGTERM, then SIGKILL after a grace.
func (p *procs) stop(pid int) {
	p.mu.Lock()
	done := p.done[pid]
	delete(p.cmds, pid)
	delete(p.done, pid)
	p.mu.Unlock()
	if done == nil {
		return
	}
	syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		syscall.Kill(-pid, syscall.SIGKILL)
		<-done
	}
	// A forked child (nginx's worker) may outlive its master by a moment.
	syscall.Kill(-pid, syscall.SIGKILL)
}

// stopAll stops every process still running.
func (p *procs) stopAll() {
	p.mu.Lock()
	pids := make([]int, 0, len(p.cmds))
	for pid := range p.cmds {
		pids = append(pids, pid)
	}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, pid := range pids {
		wg.Add(1)
		go func() { defer wg.Done(); p.stop(pid) }()
	}
	wg.Wait()
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("sluice-bench: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitHTTP polls url until it answers 200 or the deadline passes.
func waitHTTP(url string, header http.Header, timeout time.Duration, alive func() bool) error {
	deadline := time.Now().Add(timeout)
	c := &http.Client{Timeout: time.Second}
	var last error
	for time.Now().Before(deadline) {
		if alive != nil && !alive() {
			return fmt.Errorf("sluice-bench: process exited before %s answered", url)
		}
		req, _ := http.NewRequest("GET", url, nil)
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := c.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				c.CloseIdleConnections()
				return nil
			}
			last = fmt.Errorf("status %d", resp.StatusCode)
		} else {
			last = err
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("sluice-bench: %s not ready after %s: %v", url, timeout, last)
}

// clkTck is USER_HZ, the unit of utime and stime in /proc/<pid>/stat; it is
// 100 on every Linux architecture Go supports.
const clkTck = 100

// procTree returns pid and all its descendants (nginx: master and worker).
func procTree(pid int) []int {
	parent := map[int]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := readStat(n); err == nil {
			parent[n] = st.ppid
		}
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		for c, pp := range parent {
			if pp == out[i] {
				out = append(out, c)
			}
		}
	}
	return out
}

type stat struct {
	ppid         int
	utime, stime uint64
}

// readStat parses /proc/<pid>/stat; the command name may hold spaces and
// parentheses, so fields are counted from the last ')'.
func readStat(pid int) (stat, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return stat{}, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return stat{}, fmt.Errorf("sluice-bench: malformed stat of %d", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); ppid is field 4, utime 14, stime 15.
	if len(f) < 13 {
		return stat{}, fmt.Errorf("sluice-bench: short stat of %d", pid)
	}
	var s stat
	s.ppid, _ = strconv.Atoi(f[1])
	s.utime, _ = strconv.ParseUint(f[11], 10, 64)
	s.stime, _ = strconv.ParseUint(f[12], 10, 64)
	return s, nil
}

// cpuSeconds is utime+stime of pid and its descendants.
func cpuSeconds(pid int) float64 {
	var ticks uint64
	for _, p := range procTree(pid) {
		if s, err := readStat(p); err == nil {
			ticks += s.utime + s.stime
		}
	}
	return float64(ticks) / clkTck
}

// rssBytes is VmRSS of pid and its descendants.
func rssBytes(pid int) int64 {
	var total int64
	for _, p := range procTree(pid) {
		f, err := os.Open(filepath.Join("/proc", strconv.Itoa(p), "status"))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "VmRSS:") {
				fs := strings.Fields(line)
				if len(fs) >= 2 {
					kb, _ := strconv.ParseInt(fs[1], 10, 64)
					total += kb * 1024
				}
			}
		}
		f.Close()
	}
	return total
}
