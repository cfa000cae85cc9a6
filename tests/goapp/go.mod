module profefs.test/goapp

go 1.19
