// Package providerhost is where the language host leaves a warm dynamic-provider host for the plugin the
// engine starts next (tools/pulumi/provider-plugin) to claim: a Unix socket named after the engine's
// address, which both are given, in a folder only this user can enter.
package providerhost

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
)

// HostScript is the Python dynamic-provider host, installed beside the language host and the plugin.
const HostScript = "dynamic-provider-host"

// maxSocketPath is the shortest limit of a Unix socket's path among the systems Go supports.
const maxSocketPath = 103

// Socket is the path of the warm host's socket for the engine at engineAddress, or "" when the system's
// temporary folder makes it too long for a socket (then every host starts cold).
func Socket(engineAddress string) string {
	digest := sha256.Sum256([]byte(engineAddress))
	path := filepath.Join(os.TempDir(), fmt.Sprintf("callmask-%d", os.Getuid()),
		"provider-"+hex.EncodeToString(digest[:8])+".sock")
	if len(path) > maxSocketPath {
		return ""
	}
	return path
}
