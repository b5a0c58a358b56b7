package dns

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"

	mdns "github.com/miekg/dns"
)

// resolvConfPath lists the nameservers asked when no server is set.
const resolvConfPath = "/etc/resolv.conf"

// maxResolvConf bounds what is read of it; a real one is a few lines.
const maxResolvConf = 64 << 10

// systemServers returns the nameservers of the resolv.conf file at path as
// "IP:53", in the file's order. A nameserver that is not an IP address is
// skipped with a warning, as the C library skips it.
func systemServers(path string, log *slog.Logger) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("no server set, and the system's nameservers are unknown: %w", err)
	}
	defer f.Close()
	servers, skipped, err := readServers(io.LimitReader(f, maxResolvConf))
	if err != nil {
		return nil, fmt.Errorf("no server set, and reading %s: %w", path, err)
	}
	for _, s := range skipped {
		log.Warn("dns: skipping a nameserver that is not an IP address", "file", path, "nameserver", s)
	}
	if len(servers) == 0 {
		return nil, fmt.Errorf("no server set, and %s lists no nameserver: set server", path)
	}
	return servers, nil
}

// readServers returns the nameservers of a resolv.conf file as "IP:53",
// and the entries skipped because they are not IP addresses.
func readServers(r io.Reader) (servers, skipped []string, err error) {
	conf, err := mdns.ClientConfigFromReader(r)
	if err != nil {
		return nil, nil, err
	}
	for _, s := range conf.Servers {
		a, err := netip.ParseAddr(s)
		if err != nil {
			skipped = append(skipped, s)
			continue
		}
		servers = append(servers, netip.AddrPortFrom(a, 53).String())
	}
	return servers, skipped, nil
}
