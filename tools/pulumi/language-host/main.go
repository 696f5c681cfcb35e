// The Python language host the Pulumi engine starts to run this project's program.
//
// Pulumi's own host is a Go module of its own that the Go module proxy does not serve, so `make setup` builds
// this one beside the `pulumi` it builds, from the same pinned modules. It does what Pulumi's does for a
// `toolchain: pip` project without a virtualenv option: it runs the program in a new process of the
// `python3` on PATH, through the SDK's `pulumi-language-python-exec` script (installed beside it from the same
// Pulumi release), with the stack config in PULUMI_CONFIG and the secret keys in PULUMI_CONFIG_SECRET_KEYS.
//
// With the project's runtime option warmProviderHost, the program's process also becomes the Python
// dynamic-provider host: it starts as tools/dynamic-provider-host --beside, which imports the SDK once and
// forks the host off before it runs the program, for the plugin the engine starts at the first dynamic
// resource to claim ready (tools/pulumi/provider-plugin).
//
// The engine starts it with its own address as the last argument and reads the port it listens on from the
// first line of its output. The engine starts two or three hosts for every preview, update and refresh, so
// the host is a small Go program: it is ready in milliseconds.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"

	"callmask/tools/pulumi/providerhost"
)

const (
	execScript = "pulumi-language-python-exec"
	// The exec script's exit code for "the error was already shown to the user".
	shownToUser = 32
	engineGone  = 1
	// How often the engine's health is checked; the tests set a tenth of a second.
	watchVariable = "CALLMASK_ENGINE_WATCH_SECONDS"
	maxMessage    = 400 * 1024 * 1024
	// The project's runtime option (Pulumi.yaml) that has a dynamic-provider host started beside its program.
	warmOption = "warmProviderHost"
)

type languageHost struct {
	pulumirpc.UnimplementedLanguageRuntimeServer
	engineAddress string
	toolsDir      string

	mu       sync.Mutex
	programs map[*exec.Cmd]struct{}
	warmed   bool
	stopped  bool
}

// stopPrograms ends the programs the engine asked for, which would otherwise wait for it forever (and with
// them a provider host no plugin has claimed); nothing starts after it.
func (h *languageHost) stopPrograms() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopped = true
	for program := range h.programs {
		_ = program.Process.Kill()
	}
}

func (h *languageHost) Handshake(context.Context, *pulumirpc.LanguageHandshakeRequest) (
	*pulumirpc.LanguageHandshakeResponse, error) {
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

func (h *languageHost) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{}, nil
}

func (h *languageHost) GetRequiredPlugins(context.Context, *pulumirpc.GetRequiredPluginsRequest) (
	*pulumirpc.GetRequiredPluginsResponse, error) {
	return &pulumirpc.GetRequiredPluginsResponse{}, nil
}

func (h *languageHost) GetRequiredPackages(context.Context, *pulumirpc.GetRequiredPackagesRequest) (
	*pulumirpc.GetRequiredPackagesResponse, error) {
	return &pulumirpc.GetRequiredPackagesResponse{}, nil
}

func (h *languageHost) About(context.Context, *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	python, err := python3()
	if err != nil {
		return nil, err
	}
	printed, err := exec.Command(python, "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --version: %w", python, err)
	}
	return &pulumirpc.AboutResponse{Executable: python,
		Version: strings.TrimPrefix(strings.TrimSpace(string(printed)), "Python ")}, nil
}

func (h *languageHost) Run(_ context.Context, request *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	python, err := python3()
	if err != nil {
		return nil, err
	}
	info := request.GetInfo()
	programDir := first(info.GetProgramDirectory(), request.GetPwd())
	args := []string{"-u"}
	if socket := h.warmProviderHost(info.GetOptions()); socket != "" {
		args = append(args, filepath.Join(h.toolsDir, providerhost.HostScript), "--beside", socket, h.engineAddress)
	}
	args = append(args, filepath.Join(h.toolsDir, execScript),
		"--monitor", request.GetMonitorAddress(), "--engine", h.engineAddress,
		"--project", request.GetProject(), "--stack", request.GetStack(), "--organization", request.GetOrganization(),
		"--root_directory", first(info.GetRootDirectory(), programDir), "--pwd", programDir,
		"--dry_run", strconv.FormatBool(request.GetDryRun()), "--parallel", strconv.Itoa(int(request.GetParallel())),
		first(info.GetEntryPoint(), "."))
	// A stack with no config (or no secrets) sends none: the program reads an empty map (list), never null.
	config, err := json.Marshal(orEmptyMap(request.GetConfig()))
	if err != nil {
		return nil, err
	}
	secretKeys, err := json.Marshal(orEmptyList(request.GetConfigSecretKeys()))
	if err != nil {
		return nil, err
	}
	program := exec.Command(python, append(args, request.GetArgs()...)...)
	program.Dir = programDir
	program.Env = append(os.Environ(), "PULUMI_CONFIG="+string(config), "PULUMI_CONFIG_SECRET_KEYS="+string(secretKeys))
	program.Stdin, program.Stdout, program.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := h.start(program); err != nil {
		return nil, err
	}
	err = program.Wait()
	h.mu.Lock()
	delete(h.programs, program)
	h.mu.Unlock()
	var exited *exec.ExitError
	switch {
	case err == nil:
		return &pulumirpc.RunResponse{}, nil
	case errors.As(err, &exited) && exited.ExitCode() == shownToUser:
		return &pulumirpc.RunResponse{Bail: true}, nil
	case errors.As(err, &exited):
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("Program exited with non-zero exit code: %d",
			exited.ExitCode())}, nil
	default:
		return nil, err
	}
}

// warmProviderHost is the socket of the Python dynamic-provider host the program's process is to fork off
// as it starts, once, when the project's runtime options ask for it: the plugin the engine starts at the
// first dynamic resource claims it ready (tools/pulumi/provider-plugin). Unclaimed, it ends with the
// program. "" when there is to be none: the plugin starts its host cold.
func (h *languageHost) warmProviderHost(options *structpb.Struct) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.warmed || h.stopped || !options.GetFields()[warmOption].GetBoolValue() {
		return ""
	}
	h.warmed = true
	socket := providerhost.Socket(h.engineAddress)
	if socket == "" || os.MkdirAll(filepath.Dir(socket), 0o700) != nil {
		return ""
	}
	return socket
}

func (h *languageHost) start(program *exec.Cmd) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return errors.New("the engine stopped this language host before the program started")
	}
	if err := program.Start(); err != nil {
		return fmt.Errorf("starting the program with %s: %w", program.Path, err)
	}
	h.programs[program] = struct{}{}
	return nil
}

func python3() (string, error) {
	found, err := exec.LookPath("python3")
	if err != nil {
		return "", status.Error(codes.FailedPrecondition, "pulumi-language-python: no python3 on PATH; activate "+
			"the project's .venv (source .venv/bin/activate) or run `make setup`")
	}
	return found, nil
}

func first(values ...string) string {
	for _, value := range values {
		if value != "" {
			return value
		}
	}
	return ""
}

func orEmptyMap(config map[string]string) map[string]string {
	if config == nil {
		return map[string]string{}
	}
	return config
}

func orEmptyList(keys []string) []string {
	if keys == nil {
		return []string{}
	}
	return keys
}

// watchEngine calls onGone once the engine no longer answers its health check, as Pulumi's own plugins do;
// an engine without the health service (Unimplemented) still counts as alive.
func watchEngine(address string, every time.Duration, onGone func()) error {
	connection, err := grpc.NewClient(address, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	health := healthpb.NewHealthClient(connection)
	go func() {
		for {
			time.Sleep(every)
			_, err := health.Check(context.Background(), &healthpb.HealthCheckRequest{})
			if err != nil && status.Code(err) != codes.Unimplemented {
				onGone()
				return
			}
		}
	}()
	return nil
}

func watchInterval() time.Duration {
	if seconds, err := strconv.ParseFloat(os.Getenv(watchVariable), 64); err == nil && seconds > 0 {
		return time.Duration(seconds * float64(time.Second))
	}
	return time.Second
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: pulumi-language-python ENGINE_ADDRESS (started by the pulumi engine)")
		os.Exit(2)
	}
	itself, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pulumi-language-python:", err)
		os.Exit(1)
	}
	host := &languageHost{engineAddress: os.Args[len(os.Args)-1], programs: map[*exec.Cmd]struct{}{},
		toolsDir: filepath.Dir(itself)}

	// The engine interrupts its plugins when it is done with them, or is stopped, at any moment.
	interrupted := make(chan os.Signal, 1)
	signal.Notify(interrupted, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-interrupted
		host.stopPrograms()
		os.Exit(0)
	}()
	if err := watchEngine(host.engineAddress, watchInterval(), func() {
		host.stopPrograms()
		os.Exit(engineGone)
	}); err != nil {
		fmt.Fprintln(os.Stderr, "pulumi-language-python: the engine's address:", err)
		os.Exit(1)
	}

	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "pulumi-language-python:", err)
		os.Exit(1)
	}
	server := grpc.NewServer(grpc.MaxRecvMsgSize(maxMessage))
	pulumirpc.RegisterLanguageRuntimeServer(server, host)
	fmt.Println(listener.Addr().(*net.TCPAddr).Port)
	if err := server.Serve(listener); err != nil {
		fmt.Fprintln(os.Stderr, "pulumi-language-python:", err)
		os.Exit(1)
	}
}
