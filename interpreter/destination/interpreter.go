package destination

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/switchyard-proxy/switchyard/interpreter"
	"github.com/switchyard-proxy/switchyard/interpreter/destination/destpb"
)

const (
	// scheme is sent in every request, as linkerd2-proxy sends it.
	scheme = "k8s"
	// maxMessageSize bounds one update, gRPC's default made explicit: an
	// add of about 100,000 endpoints.
	maxMessageSize = 4 << 20
	// TCP keepalive finds a dead server behind a quiet stream, which may
	// rightly carry nothing for hours: about a minute after the last byte
	// from a peer that is gone, the connection fails and every stream on
	// it is opened again. gRPC's own keepalive pings are left off: servers
	// answer pings more frequent than they allow (grpc-go's default: one
	// per 5 minutes) by closing the connection.
	keepAliveIdle     = 30 * time.Second
	keepAliveInterval = 10 * time.Second
	keepAliveCount    = 3
)

var errClosed = errors.New("destination: interpreter closed")

// Interpreter resolves names through a Destination service. It holds one
// gRPC connection (grpc.ClientConn), dialed at the first Resolve and again
// whenever it fails; each watched name is one stream on it, read by a
// goroutine of its own.
type Interpreter struct {
	st     Settings
	env    interpreter.Env
	log    *slog.Logger
	conn   *grpc.ClientConn
	client destpb.DestinationClient
	ctx    context.Context // done at Close; every watch's context derives from it
	cancel context.CancelFunc

	mu     sync.Mutex // guards closed; makes every wg.Add of a Resolve happen before Close's Wait
	closed bool
	wg     sync.WaitGroup // watch goroutines
}

var _ interpreter.Interpreter = (*Interpreter)(nil)

// newInterpreter builds the gRPC client of st; tlsConf nil is plaintext.
func newInterpreter(st Settings, tlsConf *tls.Config, env interpreter.Env) (*Interpreter, error) {
	creds := insecure.NewCredentials()
	if tlsConf != nil {
		creds = credentials.NewTLS(tlsConf)
	}
	dialer := &net.Dialer{
		Timeout: st.Timeout,
		KeepAliveConfig: net.KeepAliveConfig{
			Enable:   true,
			Idle:     keepAliveIdle,
			Interval: keepAliveInterval,
			Count:    keepAliveCount,
		},
	}
	// passthrough: addr goes to the dialer as it is, which looks a host
	// name up at each connect, rather than to gRPC's DNS resolver.
	conn, err := grpc.NewClient("passthrough:///"+st.Addr,
		grpc.WithTransportCredentials(creds),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return dialer.DialContext(ctx, "tcp", addr)
		}),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay:  st.BackoffMin,
				Multiplier: backoff.DefaultConfig.Multiplier,
				Jitter:     backoff.DefaultConfig.Jitter,
				MaxDelay:   st.BackoffMax,
			},
			MinConnectTimeout: st.Timeout,
		}),
		grpc.WithDisableServiceConfig(),
		grpc.WithUserAgent("switchyard"),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessageSize)),
	)
	if err != nil {
		return nil, fmt.Errorf("destination: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Interpreter{
		st:     st,
		env:    env,
		log:    env.Log.With("destination", st.Addr),
		conn:   conn,
		client: destpb.NewDestinationClient(conn),
		ctx:    ctx,
		cancel: cancel,
	}, nil
}

// Resolve starts watching name on a new goroutine, which opens the name's
// stream. It does no I/O. A name that is not /svc/<host>:<port>, or a
// Resolve after Close, gets a Failed answer at once. The stop function
// cancels the stream's context: it starts nothing and waits for nothing.
func (n *Interpreter) Resolve(name string, sink interpreter.Sink) (stop func()) {
	path, err := parseName(name)
	if err != nil {
		n.env.Stats.Errors.Add(1)
		sink.Update(interpreter.FailedWith(fmt.Errorf("destination: %w", err)))
		return func() {}
	}
	stop = n.start(name, path, sink)
	if stop == nil {
		sink.Update(interpreter.FailedWith(errClosed))
		return func() {}
	}
	return stop
}

// start starts the watch of name unless the interpreter is closed, and
// returns its stop function (nil when closed).
func (n *Interpreter) start(name, path string, sink interpreter.Sink) func() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	w := n.newNameWatch(name, path, sink)
	n.wg.Add(1)
	go w.watchLoop()
	return w.release
}

// Close stops every watch, waits for their goroutines to end, and closes
// the connection. It may be called more than once.
func (n *Interpreter) Close() error {
	n.mu.Lock()
	wasClosed := n.closed
	n.closed = true
	n.mu.Unlock()
	n.cancel()
	n.wg.Wait()
	if wasClosed {
		return nil
	}
	if err := n.conn.Close(); err != nil {
		return fmt.Errorf("destination: %w", err)
	}
	return nil
}
