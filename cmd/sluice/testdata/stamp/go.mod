module stamp

go 1.24

require github.com/sluiceproxy/sluice/sdk/go v0.0.0

replace github.com/sluiceproxy/sluice/sdk/go => ../../../../sdk/go
