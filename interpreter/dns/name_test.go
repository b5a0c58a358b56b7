package dns

import (
	"strconv"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"
)

func TestParseName(t *testing.T) {
	long63 := strings.Repeat("a", 63)
	long253 := strings.Repeat(long63+".", 3) + strings.Repeat("b", 61) // 4*63+1 = 253
	tests := []struct {
		name string
		want target
	}{
		{"/dns/web.example.com/80", target{host: "web.example.com.", port: 80}},
		{"/dns/web.example.com./443", target{host: "web.example.com.", port: 443}},
		{"/dns/Web.EXAMPLE.com/65535", target{host: "web.example.com.", port: 65535}},
		{"/dns/localhost/1", target{host: "localhost.", port: 1}},
		{"/dns/my_host-1.example/8080", target{host: "my_host-1.example.", port: 8080}},
		{"/dns/" + long253 + "/80", target{host: long253 + ".", port: 80}},
		{"/dns/" + long253 + "./80", target{host: long253 + ".", port: 80}},
		{"/dnssrv/_http._tcp.example.com", target{srv: true, host: "_http._tcp.example.com."}},
		{"/dnssrv/web.service.consul.", target{srv: true, host: "web.service.consul."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseName(tt.name)
			if err != nil || got != tt.want {
				t.Fatalf("parseName = %+v, %v; want %+v", got, err, tt.want)
			}
			if (&Settings{}).CheckName(tt.name) != nil {
				t.Errorf("CheckName rejects it")
			}
		})
	}
}

func TestCheckNameRejects(t *testing.T) {
	long64 := strings.Repeat("a", 64)
	long254 := strings.Repeat(strings.Repeat("a", 63)+".", 3) + strings.Repeat("b", 62)
	tests := []struct {
		name, want string
	}{
		{"/svc/web", `"/svc/web" is not a name of the dns interpreter: write /dns/<host>/<port> or /dnssrv/<_service._proto.domain>`},
		{"/dns", `"/dns" is not a name of the dns interpreter`},
		{"/dns/web.example.com", `"/dns/web.example.com" has no port: write /dns/<host>/<port>`},
		{"/dns//80", `"/dns//80": missing host name`},
		{"/dns/web.example.com/", `"/dns/web.example.com/": missing port`},
		{"/dns/web.example.com/0", `"/dns/web.example.com/0": port 0 is out of range (1-65535)`},
		{"/dns/web.example.com/65536", `"/dns/web.example.com/65536": port 65536 is out of range (1-65535)`},
		{"/dns/web.example.com/http", `"/dns/web.example.com/http": port "http" is not a number`},
		{"/dns/web.example.com/-1", `port "-1" is not a number`},
		{"/dns/web.example.com/80/x", `port "80/x" is not a number`},
		{"/dns/10.0.0.1/80", `"/dns/10.0.0.1/80": "10.0.0.1" is an IP address, not a host name (a static interpreter takes literal addresses)`},
		{"/dns/::1/80", `"::1" is an IP address`},
		{"/dns/10.0.0.1./80", `"10.0.0.1." is an IP address`},
		{"/dns/web..example/80", `host name "web..example": empty label (a leading dot or two dots in a row)`},
		{"/dns/.example/80", `empty label`},
		{"/dns/./80", `empty label`},
		{"/dns/web.example../80", `empty label`},
		{"/dns/" + long64 + ".example/80", `label "` + long64 + `" is 64 characters long, more than 63`},
		{"/dns/" + long254 + "/80", `host name is 254 characters long, more than 253`},
		{"/dns/web example/80", `' ' is not allowed: labels take letters, digits, "-" and "_"`},
		{"/dns/web*.example/80", `'*' is not allowed`},
		{"/dns/wéb.example/80", `byte 0xc3 is not allowed`},
		{"/dns/[::1]/80", `'[' is not allowed`},
		{"/dnssrv/", `"/dnssrv/": missing host name`},
		{"/dnssrv/_http._tcp.example/80", `"/dnssrv/_http._tcp.example/80" has a "/" after the service name: SRV records give the port, write /dnssrv/<_service._proto.domain>`},
		{"/dnssrv/_http._tcp..example", `empty label`},
		{"/DNS/web.example/80", `is not a name of the dns interpreter`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := (&Settings{}).CheckName(tt.name)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("CheckName(%q) = %v, want an error containing %q", tt.name, err, tt.want)
			}
		})
	}
}

func FuzzParseName(f *testing.F) {
	for _, s := range []string{
		"/dns/web.example.com/80", "/dns/web.example.com./443", "/dnssrv/_http._tcp.example.com",
		"/dns/10.0.0.1/80", "/dns//80", "/dns/a..b/1", "/dns/x/0", "/dns/x/99999", "/dnssrv/a/b",
		"/dns/" + strings.Repeat("a.", 127) + "/1", "/svc/x", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		tg, err := parseName(name)
		if err != nil {
			if !strings.Contains(err.Error(), `"`) {
				t.Fatalf("error %q does not quote the name", err)
			}
			return
		}
		host := strings.TrimSuffix(tg.host, ".")
		switch {
		case !strings.HasSuffix(tg.host, "."):
			t.Fatalf("%q: host %q is not fully qualified", name, tg.host)
		case len(host) == 0 || len(host) > maxHostLen:
			t.Fatalf("%q: host %q has length %d", name, tg.host, len(host))
		case strings.ToLower(tg.host) != tg.host:
			t.Fatalf("%q: host %q is not lower case", name, tg.host)
		case tg.srv != (tg.port == 0):
			t.Fatalf("%q: srv %v with port %d", name, tg.srv, tg.port)
		}
		if _, ok := mdns.IsDomainName(tg.host); !ok {
			t.Fatalf("%q: host %q is not a domain name for miekg/dns", name, tg.host)
		}
		for label := range strings.SplitSeq(host, ".") {
			if checkLabel(label) != nil {
				t.Fatalf("%q: bad label %q accepted", name, label)
			}
		}
		if _, err := mdns.NewRR(tg.host + " 1 IN A 192.0.2.1"); err != nil {
			t.Fatalf("%q: host %q does not make a record: %v", name, tg.host, err)
		}
		again, err := parseName(nameOf(tg))
		if err != nil || again != tg {
			t.Fatalf("%q parses to %+v, whose name %q parses to %+v, %v", name, tg, nameOf(tg), again, err)
		}
	})
}

// nameOf is the name that parses to t.
func nameOf(t target) string {
	if t.srv {
		return srvPrefix + t.host
	}
	return hostPrefix + t.host + "/" + strconv.Itoa(int(t.port))
}
