// The dynamic-provider plugin the Pulumi engine starts for this project's providers
// (pulumi-resource-pulumi-python), with the engine's address as its last argument.
//
// A plugin is started when the program registers its first dynamic resource, and a Python host takes a
// third of a second to import the SDK and the providers before it can print its port; that wait was the
// larger part of a no-op preview's time above an empty program's. So the program's process forks a Python
// host off as it starts ("warm", tools/dynamic-provider-host --beside, which the language host runs the
// program through), and this plugin claims it: it hands over its working folder, its environment and its
// standard streams, and the warm host serves exactly as one started here would, printing its port on this
// plugin's output. This process stays for the engine to stop; the host ends with it (its connection closes)
// or when the engine is gone.
//
// With no warm host to claim (a refresh or destroy runs no program; a project without the option), or one
// that ends before it takes the claim, this process becomes the Python host itself: a cold start.
package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"

	"callmask/tools/pulumi/providerhost"
)

type claim struct {
	Dir  string   `json:"dir"`
	Env  []string `json:"env"`
	Args []string `json:"args"`
}

// claimWarmHost hands this plugin's place to the warm host for the engine, if one takes it; it returns
// false when there is none (or it ended before it took the claim).
func claimWarmHost(engineAddress string) bool {
	path := providerhost.Socket(engineAddress)
	if path == "" {
		return false
	}
	connection, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return false
	}
	dir, err := os.Getwd()
	if err != nil {
		return false
	}
	message, err := json.Marshal(claim{Dir: dir, Env: os.Environ(), Args: os.Args[1:]})
	if err != nil {
		return false
	}
	framed := binary.BigEndian.AppendUint32(nil, uint32(len(message)))
	streams := syscall.UnixRights(int(os.Stdin.Fd()), int(os.Stdout.Fd()), int(os.Stderr.Fd()))
	if _, _, err := connection.WriteMsgUnix(append(framed, message...), streams, nil); err != nil {
		return false
	}
	taken := make([]byte, 1)
	if _, err := io.ReadFull(connection, taken); err != nil {
		return false // it ended before it took the claim: start cold
	}
	stopped := make(chan os.Signal, 1)
	signal.Notify(stopped, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-stopped
		os.Exit(0) // the connection closes with this process, and the host ends
	}()
	_, _ = io.Copy(io.Discard, connection) // until the host ends
	return true
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: pulumi-resource-pulumi-python ENGINE_ADDRESS (started by the pulumi engine)")
		os.Exit(2)
	}
	if claimWarmHost(os.Args[len(os.Args)-1]) {
		return
	}
	itself, err := os.Executable()
	if err == nil {
		var python string
		if python, err = exec.LookPath("python3"); err == nil {
			script := filepath.Join(filepath.Dir(itself), providerhost.HostScript)
			err = syscall.Exec(python, append([]string{python, script}, os.Args[1:]...), os.Environ())
		}
	}
	fmt.Fprintln(os.Stderr, "pulumi-resource-pulumi-python: cannot start the provider host:", err)
	os.Exit(1)
}
