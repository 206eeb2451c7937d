module github.com/sluiceproxy/sluice/sdk/go

go 1.24
