module github.com/sluiceproxy/sluice/examples

go 1.24
