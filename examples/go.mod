module github.com/sluiceproxy/sluice/examples

go 1.26.0

require github.com/sluiceproxy/sluice/sdk/go v0.0.0

replace github.com/sluiceproxy/sluice/sdk/go => ../sdk/go

require (
	github.com/gorilla/websocket v1.5.3
	github.com/sluiceproxy/sluice v0.0.0
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/redis/go-redis/v9 v9.23.0 // indirect
	go.uber.org/atomic v1.12.0 // indirect
)

require (
	github.com/BurntSushi/toml v1.6.0 // indirect
	github.com/tetratelabs/wazero v1.12.0
	golang.org/x/sys v0.48.0 // indirect
)

replace github.com/sluiceproxy/sluice => ../
