package nginxmod

import (
	"errors"
	"testing"
)

func TestStreamModule(t *testing.T) {
	have := func(paths ...string) func(string) bool {
		return func(p string) bool {
			for _, q := range paths {
				if p == q {
					return true
				}
			}
			return false
		}
	}
	tests := []struct {
		name    string
		v       string
		exists  func(string) bool
		want    string
		wantErr bool
	}{
		{"dynamic, Debian", "configure arguments: --prefix=/usr/share/nginx --modules-path=/usr/lib/nginx/modules --with-stream=dynamic --with-stream_ssl_module",
			have("/usr/lib/nginx/modules/ngx_stream_module.so"), "/usr/lib/nginx/modules/ngx_stream_module.so", false},
		{"dynamic, own modules path", "--modules-path=/opt/ngx/mod --with-stream=dynamic",
			have("/opt/ngx/mod/ngx_stream_module.so", "/usr/lib/nginx/modules/ngx_stream_module.so"), "/opt/ngx/mod/ngx_stream_module.so", false},
		{"dynamic, module not installed", "--with-stream=dynamic", have(), "", true},
		{"built in", "--with-http_ssl_module --with-stream --with-stream_ssl_module", have(), "", false},
		{"none", "--with-http_ssl_module --with-stream_ssl_preread_module", have(), "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := StreamModule(tt.v, tt.exists)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Fatalf("nginxStreamModule = %q, %v; want %q, error %v", got, err, tt.want, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrNoStream) {
				t.Fatalf("error %v is not ErrNoStream", err)
			}
		})
	}
}
