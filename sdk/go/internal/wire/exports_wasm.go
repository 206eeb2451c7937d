//go:build wasip1

package wire

// The guest exports. The SDK exports every hook; sluice_hooks tells the host
// which ones have a handler, so it skips the rest.

//go:wasmexport sluice_abi_version
func exportABIVersion() int32 { return ABIVersion() }

//go:wasmexport sluice_features
func exportFeatures() int32 { return Features() }

//go:wasmexport sluice_hooks
func exportHooks() int32 { return Hooks() }

//go:wasmexport sluice_configure
func exportConfigure(configLen int32) int32 { return Configure(configLen) }

//go:wasmexport sluice_on_request_headers
func exportOnRequestHeaders() int32 { return OnRequestHeaders() }

//go:wasmexport sluice_on_response_headers
func exportOnResponseHeaders() int32 { return OnResponseHeaders() }

//go:wasmexport sluice_on_upgrade
func exportOnUpgrade() int32 { return OnUpgrade() }

//go:wasmexport sluice_on_message
func exportOnMessage(direction, kind, length int32) int32 {
	return OnMessage(direction, kind, length)
}

//go:wasmexport sluice_on_close
func exportOnClose() { OnClose() }
