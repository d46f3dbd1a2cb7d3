package process

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/targets"
)

// childModeEnv switches the test binary into one of the helper programs below: the tests
// supervise real processes, and re-running this binary is the one program sure to exist.
const childModeEnv = "PROCESS_TEST_CHILD"

func TestMain(m *testing.M) {
	switch mode := os.Getenv(childModeEnv); mode {
	case "":
		// Under -race, a program sleeps 1s at exit by default: the children would look slow
		// to stop. They inherit this.
		if os.Getenv("GORACE") == "" {
			os.Setenv("GORACE", "atexit_sleep_ms=0")
		}
		os.Exit(m.Run())
	case "serve":
		serveChild()
	case "exit":
		exitChild()
	case "daemon":
		miniDaemon()
	case "drainee":
		draineeChild()
	case "warmee":
		warmeeChild()
	default:
		fmt.Fprintf(os.Stderr, "unknown %s=%q\n", childModeEnv, mode)
		os.Exit(3)
	}
}

// serveChild announces itself and runs until a signal arrives, which it reports.
//
//	IGNORE_TERM=1  ignore SIGTERM (to test the SIGKILL after stop_timeout)
//	GRANDCHILD=1   start a copy of itself in the same process group first
//	NO_WAIT=1      exit without waiting for the grandchild (which is left to init)
//	ROLE           printed before "got ..." (grandchild or leader)
//	SAY            lines to print on stdout first, separated by "|"
//	SAY_ERR        a line to print on stderr first
func serveChild() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2)
	if os.Getenv("IGNORE_TERM") == "1" {
		signal.Ignore(syscall.SIGTERM)
	}
	role := os.Getenv("ROLE")
	if role == "" {
		role = "leader"
	}
	var grandchild *exec.Cmd
	if os.Getenv("GRANDCHILD") == "1" {
		grandchild = exec.Command(os.Args[0])
		grandchild.Env = append(os.Environ(), "GRANDCHILD=0", "ROLE=grandchild")
		grandchild.Stdout, grandchild.Stderr = os.Stdout, os.Stderr
		if err := grandchild.Start(); err != nil {
			fmt.Println("cannot start grandchild:", err)
			os.Exit(4)
		}
		fmt.Printf("grandchild pid=%d\n", grandchild.Process.Pid)
	}
	if say := os.Getenv("SAY"); say != "" {
		for _, line := range strings.Split(say, "|") {
			fmt.Println(line)
		}
	}
	if say := os.Getenv("SAY_ERR"); say != "" {
		fmt.Fprintln(os.Stderr, say)
	}
	wd, _ := os.Getwd()
	fmt.Printf("%s ready replica=%s pid=%d dir=%s\n", role, os.Getenv(ReplicaEnv), os.Getpid(), wd)
	sig := <-sigs
	fmt.Printf("%s got %s\n", role, signalName(sig.(syscall.Signal)))
	if grandchild != nil && os.Getenv("NO_WAIT") != "1" {
		// A well-behaved parent waits for what it started.
		_ = grandchild.Wait()
	}
	os.Exit(0)
}

// exitChild announces itself, waits EXIT_AFTER (a duration, default 0) and exits with
// EXIT_CODE, or kills itself with EXIT_SIGNAL=KILL.
func exitChild() {
	fmt.Printf("leader ready replica=%s pid=%d\n", os.Getenv(ReplicaEnv), os.Getpid())
	if d, err := time.ParseDuration(os.Getenv("EXIT_AFTER")); err == nil {
		time.Sleep(d)
	}
	if os.Getenv("EXIT_SIGNAL") == "KILL" {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		time.Sleep(time.Minute)
	}
	code, _ := strconv.Atoi(os.Getenv("EXIT_CODE"))
	os.Exit(code)
}

// miniDaemon stands in for autoscalerd: it scales a process target to 3 serving children,
// prints "pids P1 P2 P3" and the children's output (as log lines), and waits to be killed.
func miniDaemon() {
	self, err := os.Executable()
	if err != nil {
		fmt.Println("executable:", err)
		os.Exit(5)
	}
	cfg := defaultConfig()
	cfg.Command = []string{self}
	cfg.Env = map[string]configs.Secret{childModeEnv: configs.NewSecret("serve")}
	tg, err := newTarget(cfg, targets.Deps{Logger: slog.New(slog.NewTextHandler(os.Stdout, nil)), Policy: "mini"}, defaultTiming)
	if err != nil {
		fmt.Println("target:", err)
		os.Exit(5)
	}
	if err := tg.Scale(context.Background(), 3, targets.Reason{}); err != nil {
		fmt.Println("scale:", err)
		os.Exit(5)
	}
	var pids []string
	for _, pid := range tg.pids() {
		pids = append(pids, strconv.Itoa(pid))
	}
	fmt.Println("pids " + strings.Join(pids, " "))
	select {}
}
