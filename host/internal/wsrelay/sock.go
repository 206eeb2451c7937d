package wsrelay

import (
	"net"
	"sync"
	"syscall"
	"time"
)

// relayBufSize is the size of the pooled buffers the relay reads into and
// batches writes in. A buffer is borrowed only while bytes are there to be
// moved and given back before the relay waits again, so an idle session
// holds none.
const relayBufSize = 16 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, relayBufSize); return &b }}

func getBuf() *[]byte  { return bufPool.Get().(*[]byte) }
func putBuf(b *[]byte) { bufPool.Put(b) }

// sock is one side's socket as the relay uses it. It does three things the
// bare net.Conn does not:
//
//   - Reads borrow a pooled buffer only once bytes are there. On a plain
//     socket (unix), the read is one read(2) inside syscall.RawConn.Read:
//     the callback takes a buffer from the pool, reads, and on EAGAIN puts
//     it back and lets the runtime park the goroutine on the poller. One
//     system call per read, no buffer while idle. Other connections (TLS)
//     hold a buffer while they wait.
//   - In message mode, writes are batched: frames written to it are
//     appended to a pooled buffer, and the buffer goes out when the reader
//     feeding this side is about to read again (flushPeer, called before
//     every read of the other side), when it fills up, or at once for
//     control frames and for writes that do not come from that reader. A
//     burst of messages read in one system call leaves in one.
type sock struct {
	net.Conn
	rc syscall.RawConn // nil when reads cannot wait without a buffer

	// Read side, used by one goroutine at a time. Bytes read but not yet
	// returned are (*rbuf)[roff:rend].
	rbuf       *[]byte
	roff, rend int
	// flushPeer, in message mode, sends what is batched for the side this
	// one feeds: called before every read that may block.
	flushPeer func()
	op        readOp
	readFn    func(fd uintptr) bool // op's callback, bound once (no allocation per read)

	// Write side. batch is set before the relay starts and never changes
	// while it runs.
	batch bool
	wmu   sync.Mutex
	wbuf  *[]byte // pending bytes are (*wbuf)[:wn]
	wn    int
	werr  error
	wdl   int64 // the write deadline last set on the socket, in Unix nanoseconds
	// writeWait is Options.WriteTimeout: a write that cannot finish within
	// it fails, and the peer that stopped reading is cut off.
	writeWait time.Duration

	// Idle parking (raw mode): resume, set before the relay starts, starts
	// a goroutine that goes on reading this socket; the fields under dmu
	// say whether the read side is parked in idleParker and what read deadline
	// the relay itself set. See parker.
	resume   func()
	dmu      sync.Mutex
	parkable bool   // an idle read may hand the socket to idleParker
	parked   bool   // in idleParker, with no goroutine reading
	closed   bool   // Close ran
	rdlSet   bool   // the relay set a read deadline (closing)
	rdl      int64  // that deadline in Unix nanoseconds, 0 for none
	parkKey  uint64 // idleParker's key, 0 before the first park
	inEpoll  bool   // registered in idleParker's epoll set

}

// readOp is the state of one read through the RawConn callback.
type readOp struct {
	into []byte  // read here, or into a pooled buffer when nil
	bp   *[]byte // the pooled buffer the bytes are in
	n    int
	err  error
}

// idlePark is how long a raw-mode direction waits for bytes with a
// goroutine before it hands its socket to idleParker and the goroutine ends.
// Resuming costs a goroutine start and an epoll_ctl, nothing a session
// quiet for this long notices.
const idlePark = 500 * time.Millisecond

func newSock(c net.Conn) *sock {
	s := &sock{Conn: c}
	s.rc = rawConn(c)
	if s.rc != nil {
		s.readFn = s.sysRead
	}
	return s
}

// readPooled reads once into a pooled buffer, which it returns with the
// bytes (bp is nil when n is 0).
func (s *sock) readPooled() (bp *[]byte, n int, err error) {
	if s.rc == nil {
		bp = getBuf()
		n, err = s.Conn.Read(*bp)
		if n == 0 {
			putBuf(bp)
			bp = nil
		}
		return bp, n, err
	}
	s.op = readOp{}
	if err := s.rc.Read(s.readFn); err != nil {
		return nil, 0, err
	}
	bp, n, err = s.op.bp, s.op.n, s.op.err
	s.op = readOp{}
	return bp, n, err
}

// readInto reads once into p.
func (s *sock) readInto(p []byte) (int, error) {
	if s.rc == nil {
		return s.Conn.Read(p)
	}
	s.op = readOp{into: p}
	if err := s.rc.Read(s.readFn); err != nil {
		s.op = readOp{}
		return 0, err
	}
	n, err := s.op.n, s.op.err
	s.op = readOp{}
	return n, err
}

// next returns the next bytes from the socket, in a pooled buffer that the
// caller gives back with putBuf: first what an earlier Read left over.
func (s *sock) next() (bp *[]byte, b []byte, err error) {
	if s.roff < s.rend {
		bp, b = s.rbuf, (*s.rbuf)[s.roff:s.rend]
		s.rbuf, s.roff, s.rend = nil, 0, 0
		return bp, b, nil
	}
	bp, n, err := s.readPooled()
	if bp != nil {
		b = (*bp)[:n]
	}
	return bp, b, err
}

// Read serves the frame reader (message mode): from what is left
// of the last read, or else, after flushing the peer, from one new read.
func (s *sock) Read(p []byte) (n int, err error) {
	switch {
	case s.roff < s.rend:
		n = copy(p, (*s.rbuf)[s.roff:s.rend])
		s.roff += n
		if s.roff == s.rend {
			putBuf(s.rbuf)
			s.rbuf, s.roff, s.rend = nil, 0, 0
		}
	case len(p) == 0:
	default:
		if s.flushPeer != nil {
			s.flushPeer()
		}
		if len(p) >= relayBufSize {
			n, err = s.readInto(p)
			break
		}
		var bp *[]byte
		var m int
		bp, m, err = s.readPooled()
		if m > 0 {
			n = copy(p, (*bp)[:m])
			if n < m {
				s.rbuf, s.roff, s.rend = bp, n, m
			} else {
				putBuf(bp)
			}
		}
	}
	return n, err
}

// awaitBytes waits until the socket has bytes to read, and keeps them for
// the next Read; an error is left for that Read to meet again. Message mode
// calls it before a side's first message, while nothing is buffered in
// its frame reader: a session that stays idle from the start then waits on a short
// stack, and since the runtime sizes new goroutines' stacks by the average
// it finds, idle sessions keep new readers at the smallest stack size.
func (s *sock) awaitBytes() {
	if s.roff < s.rend {
		return
	}
	if bp, n, _ := s.readPooled(); n > 0 {
		s.rbuf, s.roff, s.rend = bp, 0, n
	}
}

// release gives back a read buffer still held (the session is over).
func (s *sock) release() {
	if s.rbuf != nil {
		putBuf(s.rbuf)
		s.rbuf, s.roff, s.rend = nil, 0, 0
	}
}

// Write sends p, or, in batch mode, appends it to the pending bytes.
func (s *sock) Write(p []byte) (int, error) {
	if !s.batch {
		return s.Conn.Write(p)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.werr != nil {
		return 0, s.werr
	}
	if s.wbuf != nil && s.wn+len(p) > len(*s.wbuf) {
		if err := s.flushLocked(); err != nil {
			return 0, err
		}
	}
	if len(p) >= relayBufSize {
		if err := s.writeLocked(p); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	if s.wbuf == nil {
		s.wbuf, s.wn = getBuf(), 0
	}
	s.wn += copy((*s.wbuf)[s.wn:], p)
	return len(p), nil
}

// flush sends the pending bytes. The error is the first write error of the
// socket, which every later write returns too.
func (s *sock) flush() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.flushLocked()
}

func (s *sock) flushLocked() error {
	if s.wbuf == nil {
		return s.werr
	}
	bp, n := s.wbuf, s.wn
	s.wbuf, s.wn = nil, 0
	err := s.writeLocked((*bp)[:n])
	putBuf(bp)
	return err
}

// writeLocked writes p to the socket under the relay's write deadline.
func (s *sock) writeLocked(p []byte) error {
	if s.werr != nil {
		return s.werr
	}
	s.refreshWriteDeadline()
	if _, err := s.Conn.Write(p); err != nil {
		s.werr = err
		return err
	}
	return nil
}

// writeDirect writes p at once (raw mode; the caller serialises writes).
func (s *sock) writeDirect(p []byte) (int, error) {
	s.refreshWriteDeadline()
	return s.Conn.Write(p)
}

// refreshWriteDeadline keeps the socket's write deadline writeWait ahead,
// resetting the runtime timer only when it got at least a second closer:
// a peer that stops reading still cannot hold a writer for much longer than
// writeWait, and a busy relay does not pay for a timer update per write.
// Callers serialise writes.
func (s *sock) refreshWriteDeadline() {
	now := time.Now()
	wait := s.writeWait
	if wait <= 0 {
		wait = writeWait
	}
	if time.Duration(s.wdl-now.UnixNano()) < wait-wait/10 {
		d := now.Add(wait)
		s.wdl = d.UnixNano()
		s.Conn.SetWriteDeadline(d)
	}
}

// SetWriteDeadline is ignored in batch mode: the bytes go out later, in
// flush, which keeps the socket's own deadline (write_timeout).
func (s *sock) SetWriteDeadline(t time.Time) error {
	if s.batch {
		return nil
	}
	return s.Conn.SetWriteDeadline(t)
}

// SetDeadline sets the read deadline, and the write deadline unless in batch
// mode.
func (s *sock) SetDeadline(t time.Time) error {
	if s.batch {
		return s.Conn.SetReadDeadline(t)
	}
	return s.Conn.SetDeadline(t)
}

// Close closes the socket. A parked read
// side resumes, to see the socket closed as a waiting read would.
func (s *sock) Close() error {
	err := s.Conn.Close()
	if s.resume != nil {
		s.dmu.Lock()
		s.closed = true
		s.unparkLocked()
	}
	return err
}

// SetReadDeadline sets the relay's own read deadline. In raw mode it is
// noted, so that the idle deadline does not replace it, and a parked read
// side resumes to wait for it.
func (s *sock) SetReadDeadline(t time.Time) error {
	if s.resume == nil {
		return s.Conn.SetReadDeadline(t)
	}
	s.dmu.Lock()
	s.rdlSet, s.rdl = true, 0
	if !t.IsZero() {
		s.rdl = t.UnixNano()
	}
	err := s.Conn.SetReadDeadline(t)
	s.unparkLocked()
	return err
}

// unparkLocked resumes the read side if it is parked, and unlocks dmu.
func (s *sock) unparkLocked() {
	w := s.parked
	s.parked = false
	s.dmu.Unlock()
	if w {
		s.resume()
	}
}

// wake resumes the read side after idleParker saw the socket readable.
func (s *sock) wake() {
	s.dmu.Lock()
	s.unparkLocked()
}

// setIdleDeadline is called when a read is about to wait: unless the relay
// set a deadline of its own, the wait ends after idlePark, and the reader
// parks the socket instead (see afterDeadline).
func (s *sock) setIdleDeadline() {
	s.dmu.Lock()
	if s.parkable && !s.rdlSet {
		s.Conn.SetReadDeadline(time.Now().Add(idlePark))
	}
	s.dmu.Unlock()
}

// afterDeadline tells a raw reader what a read deadline error means: park
// (the idle deadline passed), again (the relay's deadline replaced the idle
// one and is still ahead), or neither (the relay's deadline passed).
func (s *sock) afterDeadline() (park, again bool) {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	if !s.rdlSet {
		return s.parkable, !s.parkable
	}
	return false, s.rdl == 0 || time.Now().UnixNano() < s.rdl
}

// park hands the read side to idleParker; the caller's goroutine then ends. It
// reports false when the socket cannot be parked now (closing, closed, no
// epoll): the caller reads on.
func (s *sock) park() bool {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	if s.rdlSet || s.closed || !s.parkable {
		return false
	}
	s.Conn.SetReadDeadline(time.Time{})
	if err := idleParker.arm(s); err != nil {
		s.parkable = false
		return false
	}
	s.parked = true
	return true
}

// CloseWrite half-closes the socket where it can, and closes it otherwise.
func (s *sock) CloseWrite() error {
	if cw, ok := s.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return s.Conn.Close()
}

// setWriteBuffer caps the kernel's send buffer of c, when it is a TCP
// socket (under TLS too): what a peer that stops reading can hold in the
// proxy's kernel. The client's connection is the server's head-recording
// wrapper, which embeds the *net.TCPConn: asking for the method rather than
// the type reaches the socket through it.
func setWriteBuffer(c net.Conn, n int) {
	if tc, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = tc.NetConn()
	}
	if wb, ok := c.(interface{ SetWriteBuffer(int) error }); ok {
		wb.SetWriteBuffer(n)
	}
}
