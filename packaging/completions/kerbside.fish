# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_kerbside_global_optspecs
    string join \n h/help V/version
end

function __fish_kerbside_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_kerbside_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_kerbside_using_subcommand
    set -l cmd (__fish_kerbside_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c kerbside -n "__fish_kerbside_needs_command" -s h -l help -d 'Print help'
complete -c kerbside -n "__fish_kerbside_needs_command" -s V -l version -d 'Print version'
complete -c kerbside -n "__fish_kerbside_needs_command" -f -a "fetch" -d 'Fetch a URL, authenticating with Kerberos when the server asks (like curl)'
complete -c kerbside -n "__fish_kerbside_needs_command" -f -a "gate" -d 'Run an authenticating reverse proxy: Negotiate with a keytab in front of an upstream'
complete -c kerbside -n "__fish_kerbside_needs_command" -f -a "tunnel" -d 'Forward a local plain-HTTP port to a kerberized server, authenticating with your ticket (for hg, pip, git... that cannot speak Negotiate)'
complete -c kerbside -n "__fish_kerbside_needs_command" -f -a "proxy" -d 'Run a local forward proxy that authenticates to the corporate proxy with your credentials (Negotiate, NTLM, Basic), for pip, git, npm, curl... (like cntlm, px)'
complete -c kerbside -n "__fish_kerbside_needs_command" -f -a "bench" -d 'Load a server with requests that speak Negotiate, and report throughput, latency, errors and the server\'s CPU per request'
complete -c kerbside -n "__fish_kerbside_needs_command" -f -a "ntlm-passwd" -d 'Add or change a user of the gate\'s NTLM users file (`--ntlm-users`); the password is read from standard input without echo'
complete -c kerbside -n "__fish_kerbside_needs_command" -f -a "digest-passwd" -d 'Add or change a user of the gate\'s Digest users file (`--digest-users`, htdigest lines); the password is read from standard input without echo'
complete -c kerbside -n "__fish_kerbside_needs_command" -f -a "doctor" -d 'Check this machine\'s Kerberos setup and, for a URL, everything between you and the server; one line per check with what to do'
complete -c kerbside -n "__fish_kerbside_needs_command" -f -a "man" -d 'Write the manual pages (kerbside.1 and one per subcommand) into a directory'
complete -c kerbside -n "__fish_kerbside_needs_command" -f -a "completions" -d 'Print shell completions for bash, zsh, fish, elvish or powershell, e.g. `kerbside completions bash > /etc/bash_completion.d/kerbside`'
complete -c kerbside -n "__fish_kerbside_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c kerbside -n "__fish_kerbside_using_subcommand fetch" -l mutual -d 'Mutual authentication: `required` (the server must prove itself with a final token), `optional` (check the token if sent), `off`' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand fetch" -l spn -d 'Kerberos service name instead of HTTP@<host of the URL>: `NAME` for every host, or `HOST=NAME` for one host (repeatable). NAME is `HTTP@host` or `HTTP/host@REALM`' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand fetch" -l delegation -d 'Forward your ticket-granting ticket: `none` (default), `policy` (only to services the KDC marks ok-as-delegate), `always`' -r -f -a "none\t'Never forward the ticket-granting ticket'
policy\t'Only to services the KDC marks ok-as-delegate'
always\t'Always'"
complete -c kerbside -n "__fish_kerbside_using_subcommand fetch" -l channel-binding -d 'Pass the TLS channel binding (RFC 5929 tls-server-end-point) to Kerberos on HTTPS; `off` for servers that reject it' -r -f -a "on\t'Enabled'
off\t'Disabled'"
complete -c kerbside -n "__fish_kerbside_using_subcommand fetch" -l max-auth-rounds -d 'Give up after this many 401 responses to one request' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand fetch" -l keytab -d 'Get Kerberos tickets with this client keytab (like `kinit -k -t FILE`), for the principal given with -u or the keytab\'s first' -r -F
complete -c kerbside -n "__fish_kerbside_using_subcommand fetch" -s u -l user -d 'User for authentication, `USER[:PASSWORD]`. With Negotiate: the Kerberos principal; its ticket is used if the cache has one, else the password gets one (asked for on the terminal when not given). `-u :` means "my ticket", as in curl. With NTLM, Digest and Basic: the user name (`DOMAIN\\\\USER` for NTLM; such a name is never taken for a Kerberos principal) and password. Without -u, the keyring file ($KERBSIDE_KEYRING, else ~/.config/kerbside/keyring.toml; refused unless mode 600) may hold a password for the host (for Negotiate, used only when there is no ticket)' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand fetch" -l allow-http-auth -d 'Allow credentials over plain http://: for the URL\'s host, or with `=HOST` for that host (repeatable). Anyone on the network path can then steal or replay them' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand fetch" -l cacert -d 'Trust only the CA certificates in this PEM file instead of the system\'s' -r -F
complete -c kerbside -n "__fish_kerbside_using_subcommand fetch" -l connect-timeout -d 'Give up connecting after SECS seconds (fractions allowed, e.g. 0.5): name lookup, TCP connect, a proxy\'s CONNECT and the TLS handshake. Default 30; 0 means the default' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand fetch" -s m -l max-time -d 'Give up on the whole transfer after SECS seconds (fractions allowed): connecting, every authentication leg, the response and its body. Default: no limit (0 too). The exit status of a timeout is 28, as curl\'s' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand fetch" -s x -l proxy -d 'Go through this HTTP proxy (`http://host:port` or `host:port`); `https://` URLs go through a CONNECT tunnel. A `407` with `Proxy-Authenticate: Negotiate` is answered with a ticket for HTTP@<proxy host>, which — the proxy being plain HTTP — needs `--allow-http-auth=<proxy host>`. Default: `http_proxy`, `https_proxy`/`HTTPS_PROXY`, `all_proxy`/`ALL_PROXY` from the environment, as curl reads them (upper-case `HTTP_PROXY` is never read: under CGI it is the client\'s `Proxy:` header)' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand fetch" -l noproxy -d 'Hosts to reach without the proxy, comma-separated: names (with their subdomains), IP addresses, CIDR ranges, `*` for all; default `no_proxy` or `NO_PROXY` from the environment' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand fetch" -s X -l request -d 'The request method (default GET, or POST with --data)' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand fetch" -s d -l data -d 'Send this request body (POST unless -X says otherwise); `@FILE` reads a file, `@-` standard input. Given several times, the parts are joined with `&`. Bodies over 1 MiB are streamed once, after the server\'s `100 Continue`' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand fetch" -s H -l header -d 'Add a request header, `Name: value`. May be repeated' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand fetch" -s o -l output -d 'Write the body to FILE instead of standard output (with a progress bar on a terminal)' -r -F
complete -c kerbside -n "__fish_kerbside_using_subcommand fetch" -l negotiate -d 'Answer `401 Negotiate` (Kerberos through SPNEGO)'
complete -c kerbside -n "__fish_kerbside_using_subcommand fetch" -l ntlm -d 'Answer NTLM (NTLMv2 only, with the user and password of -u DOMAIN\\\\USER:PASS or the keyring). The whole exchange runs on one HTTP/1.1 connection'
complete -c kerbside -n "__fish_kerbside_using_subcommand fetch" -l digest -d 'Answer Digest (RFC 7616: SHA-256, SHA-512/256; MD5 only with --allow-digest-md5)'
complete -c kerbside -n "__fish_kerbside_using_subcommand fetch" -l basic -d 'Answer Basic (the password itself, merely encoded: HTTPS only unless --allow-http-auth)'
complete -c kerbside -n "__fish_kerbside_using_subcommand fetch" -l anyauth -d 'Answer the strongest scheme the server offers (Negotiate > NTLM > Digest > Basic) that kerbside holds credentials for: Negotiate needs a Kerberos ticket (or -u with a password), the others a user name and password'
complete -c kerbside -n "__fish_kerbside_using_subcommand fetch" -l allow-digest-md5 -d 'Answer Digest challenges that offer only MD5 (old servers such as Apache\'s mod_auth_digest). MD5 is broken; a man in the middle could strip stronger offers'
complete -c kerbside -n "__fish_kerbside_using_subcommand fetch" -l allow-downgrade -d 'When a stronger scheme failed (wrong password, rejected ticket), answer a weaker one the server also offers. Off by default: a man in the middle could force that'
complete -c kerbside -n "__fish_kerbside_using_subcommand fetch" -l negotiate-ntlm -d 'With no Kerberos ticket, answer Negotiate with NTLM inside SPNEGO (as Windows does). Weaker than Kerberos, so off by default'
complete -c kerbside -n "__fish_kerbside_using_subcommand fetch" -s n -l netrc -d 'Also take user names and passwords from ~/.netrc (or $NETRC) for NTLM, Digest and Basic'
complete -c kerbside -n "__fish_kerbside_using_subcommand fetch" -l negotiate-preemptive -d 'Send the Negotiate token with the first request instead of waiting for a 401 (never over plain HTTP unless allowed). Without it, the client still does so for origins an earlier request of the same run learned want Negotiate'
complete -c kerbside -n "__fish_kerbside_using_subcommand fetch" -l spn-canonicalize -d 'Follow DNS (CNAMEs) to the canonical host name for the service name. Weaker: a spoofed DNS answer then picks which service gets your ticket'
complete -c kerbside -n "__fish_kerbside_using_subcommand fetch" -l spn-port -d 'Put a non-default port into the service name (`HTTP/host:port`)'
complete -c kerbside -n "__fish_kerbside_using_subcommand fetch" -s k -l insecure -d 'Do not verify the server\'s TLS certificate (the connection is then open to a man in the middle)'
complete -c kerbside -n "__fish_kerbside_using_subcommand fetch" -l http1.1 -d 'Use HTTP/1.1 only (by default HTTP/2 is offered on TLS)'
complete -c kerbside -n "__fish_kerbside_using_subcommand fetch" -s i -l include -d 'Include the response status line and headers in the output'
complete -c kerbside -n "__fish_kerbside_using_subcommand fetch" -s v -l verbose -d 'Show each leg on standard error: connection, request line, status, the scheme and why, the Kerberos target name and why. Tokens, passwords and cookies are redacted'
complete -c kerbside -n "__fish_kerbside_using_subcommand fetch" -s s -l silent -d 'Print no warnings or progress (errors are still printed)'
complete -c kerbside -n "__fish_kerbside_using_subcommand fetch" -s f -l fail -d 'Exit with status 22 when the final HTTP status is 400 or above'
complete -c kerbside -n "__fish_kerbside_using_subcommand fetch" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l config -d 'A TOML file with the settings below, mounts and access rules' -r -F
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l listen -d 'Address and port to listen on (default 127.0.0.1:8443; port 0 picks a free one)' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l tls-cert -d 'TLS certificate chain (PEM). Without --tls-cert/--tls-key the gate serves plain HTTP, where tokens and identities travel unprotected' -r -F
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l tls-key -d 'TLS private key (PEM, PKCS#8, PKCS#1 or SEC1)' -r -F
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l keytab -d 'Keytab holding the service keys (default: KRB5_KTNAME, then the system keytab). Key changes (a new kvno) are picked up without a restart' -r -F
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l acceptor -d 'Accept only tickets for this service (`HTTP@host` or `HTTP/host@REALM`); by default a ticket for any key in the keytab is accepted' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l replay-cache -d 'File where accepted Kerberos authenticators are kept, so a token seen before a restart is still refused after it (mode 0600, owned by the gate\'s user). Default: $KRB5RCACHEDIR (else /var/tmp)/kerbside_rcache_<acceptor>_<uid>. If it cannot be used the gate says why and checks replays with MIT\'s slower cache. Behind a load balancer, `redis://HOST:PORT/DB` shares the cache between gates (a token accepted by one is refused by all); `redis+sentinel://HOST:PORT,.../SERVICE/DB` follows the primary that Sentinels name, `redis+cluster://HOST:PORT,...` uses a Redis Cluster' -r -F
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l replay-cache-unavailable -d 'While the shared replay cache (Redis) does not answer: `refuse` Kerberos logins (default: no replay window opens), or `local` (this gate\'s memory cache decides alone)' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l upstream -d 'Forward requests to this upstream (http://host:port[/prefix]), mounted at `/`' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l cgi -d 'Run this CGI program (hgweb.cgi, git http-backend) for requests, mounted at `/`' -r -F
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l forward-auth -d 'Make PATH the authentication endpoint of a front proxy (nginx auth_request, Caddy forward_auth, Traefik forwardAuth): 200 with the identity headers, or 401 with the challenges, for the request named in X-Original-Method/X-Original-URI or X-Forwarded-Method/X-Forwarded-Uri. See docs/forward-auth.md. Repeatable' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l forward-auth-trusted -d 'A front proxy\'s address or network (e.g. 127.0.0.1, 10.0.0.0/8) allowed to ask the forward-auth endpoint; others get 403. Default loopback. Repeatable' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l forward-auth-cert -d 'The front proxy\'s TLS certificate (PEM): channel bindings in tokens that come through forward-auth are checked against it (without it, they are not checked)' -r -F
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l health-path -d 'The path of the health endpoint for load balancers: `200 ready`, or `503 draining` once the gate was told to stop; answered before authentication. Default /.kerbside/health; an empty PATH turns it off' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l whoami-path -d 'The path of the whoami page: who you are (principal, user name, groups) and how you logged in, in HTML or JSON (Accept: application/json); behind authentication and the access rules. Default /.kerbside/whoami; an empty PATH turns it off' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l shutdown-delay -d 'Seconds the gate keeps serving after SIGTERM with the health endpoint answering 503, so balancers take it out before it stops accepting (default 0)' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l proxy-protocol-trusted -d 'A balancer\'s address or network allowed to send PROXY protocol headers (the others are closed). Default loopback. Repeatable' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l identity-header -d 'Header that carries the client principal (e.g. alice@EXAMPLE.TEST) upstream. Any copy sent by a client is removed first, in any spelling (case, and `_` for `-`, as CGI/WSGI/Rack/PHP read them alike). Default X-Remote-User' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l scheme-header -d 'Header that carries the scheme the client authenticated with (Negotiate, NTLM, Digest or Basic) to proxy upstreams, e.g. X-Remote-Auth-Type; removed from clients like the identity header. Off by default. (CGI gets AUTH_TYPE.)' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l identity-key -d 'Sign the identity header with this key file (32+ random bytes, mode 0600): `<identity-header>-Signature: v1 t=<unix> sig=<base64url HMAC-SHA256 of "v1\\n<principal>\\n<t>\\n<METHOD>\\n<path?query>">`, for upstreams that want proof' -r -F
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l auth -d 'How clients stay authenticated: `per-request` (default: a token on every request), `connection` (one handshake per TCP connection, `Persistent-Auth: true`; HTTP/2 clients are told to use HTTP/1.1), `cookie` (a session cookie after one handshake; needs --session-key), `none` (no authentication)' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l session-key -d 'Session key file: 32 random bytes, created with mode 0600 if missing' -r -F
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l user-map -d 'How principals become REMOTE_USER for CGI programs: `full`, `strip-realm`, `strip-realm:REALM,...`, `down-level` (an AD user\'s `DOMAIN\\user`), `upn` (an AD user\'s UPN), or a map file of `alice@EXAMPLE.TEST = alice` lines' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l metrics -d 'Serve Prometheus metrics at http://ADDR/metrics' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l channel-binding -d 'TLS channel bindings: `optional` (default; checked when the client sends them), `required`, `off`' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l basic-realm -d 'The realm name shown in the Basic challenge (default "kerbside")' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l ntlm-users -d 'Accept NTLM (NTLMv2 only) for the users of FILE (`USER:NTHASH` lines, made with `kerbside ntlm-passwd`; mode 600). Needs --auth connection: NTLM authenticates a connection, so it is offered over HTTP/1.1 only' -r -F
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l netbios-domain -d 'The NetBIOS name of the realm\'s Active Directory domain (ADEXAMPLE): with --basic-fallback, a user typing NAME\\\\bob logs in as bob of the default realm. Default: the realm\'s first label (AD for AD.EXAMPLE.COM)' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l ntlm-winbind-smb-conf -d 'Samba\'s configuration for the --ntlm-winbind helpers (`ntlm_auth --configfile`); ntlm_auth\'s default (/etc/samba/smb.conf) otherwise' -r -F
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l digest-users -d 'Accept Digest (RFC 7616, SHA-256) for the users of FILE (htdigest lines `USER:REALM:HA1`, made with `kerbside digest-passwd`; mode 600)' -r -F
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l digest-realm -d 'The Digest realm (must match the users file\'s lines)' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l digest-nonce-lifetime -d 'How long a Digest nonce is good for; a client using an older one is told `stale=true` and answers the new one without asking for the password again' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l basic-users -d 'Accept Basic (HTTPS only) for the users of an htpasswd FILE with bcrypt hashes (`htpasswd -B`; mode 600), before --basic-fallback\'s KDC check if both' -r -F
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l check-principal -d 'Test principal for --check (e.g. a service account); without --check-keytab or --check-password-file its ticket must be in the ticket cache' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l check-keytab -d 'Keytab of the test principal' -r -F
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l check-password-file -d 'File whose first line is the test principal\'s password' -r -F
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l check-spn -d 'Service name the round trip asks a ticket for (default: --acceptor, else HTTP@<this host\'s name>)' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l delegation-dir -d 'Keep the credentials clients delegate (curl --delegation always, kerbside fetch --delegation always) in DIR, a ticket cache per user (mode 0600, replaced at each login, removed when it expires; the directory is created mode 0700), and give a CGI program the user\'s as KRB5CCNAME. Proxy upstreams get none. Off by default: a delegated credential is then dropped' -r -F
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l s4u2proxy -d 'Constrained delegation (S4U2Proxy): act as ACCOUNT@REALM (the gate\'s service account, whose own key must be in the keytab) to get tickets in the user\'s name to the services the domain lets it delegate to, without the user delegating; kept like delegated ones (needs --delegation-dir)' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l upstream-timeout -d 'Seconds an upstream may take to accept a connection, then to make progress (take the request body, send its response head) before the client gets 504. Default 60; [[mount]]s may set their own' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l max-connections -d 'Open client connections at most (default 4096); more wait in the kernel\'s backlog until one closes' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l max-body -d 'The largest request body, in bytes or with K, M, G (default 1G); beyond it the client gets 413 and nothing more is read. [[mount]]s may set their own' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l log-format -d 'Log format: `text` (default) or `json`' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l proxy-protocol -d 'Behind HAProxy or another balancer that sends the PROXY protocol (v1 or v2): take the client\'s address from the header each connection starts with. Every connection must then come from --proxy-protocol-trusted and start with a header'
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l basic-fallback -d 'Also accept Basic credentials (HTTPS only): the password gets a ticket from the KDC and that ticket must open with the gate\'s keytab, so a fake KDC cannot vouch for a user. Off by default'
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l ntlm-in-negotiate -d 'Also accept NTLM inside Negotiate (SPNEGO), as clients without a Kerberos ticket send it (curl --negotiate with gss-ntlmssp, Windows). Needs --ntlm-users or --ntlm-winbind'
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l ntlm-winbind -d 'Accept NTLM (NTLMv2 only) for the accounts of the Active Directory domain this host is joined to, checked by its domain controller through winbindd with Samba\'s ntlm_auth helpers; the user is `user@REALM`, as with Kerberos. Needs --auth connection, a running winbindd, and the right to its privileged pipe (root, or the group winbindd_priv)'
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l digest-md5 -d 'Offer Digest MD5 after SHA-256, for old clients (their lines must be MD5)'
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -l check -d 'Check the configuration and keytab, report in words, and exit (0 if all is well) instead of serving. With --check-principal, also a full Kerberos round trip: the test principal gets a ticket from the KDC and the keytab must open it'
complete -c kerbside -n "__fish_kerbside_using_subcommand gate" -s h -l help -d 'Print help'
complete -c kerbside -n "__fish_kerbside_using_subcommand tunnel" -l listen -d 'Local address to listen on (plain HTTP)' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand tunnel" -l to -d 'The remote origin and path prefix every request is forwarded to, e.g. `https://hg.example.com/repos`' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand tunnel" -l allowed-host -d 'Another name tools reach the tunnel by, as `NAME` (with the tunnel\'s port) or `NAME:PORT` (e.g. `localhost:9000` through `ssh -L 9000:localhost:8080`); repeatable. Requests with any other Host are refused (DNS rebinding)' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand tunnel" -l mutual -d 'Mutual authentication: `required` (the server must prove itself with a final token), `optional` (check the token if sent), `off`' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand tunnel" -l spn -d 'Kerberos service name instead of HTTP@<host of the URL>: `NAME` for every host, or `HOST=NAME` for one host (repeatable). NAME is `HTTP@host` or `HTTP/host@REALM`' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand tunnel" -l delegation -d 'Forward your ticket-granting ticket: `none` (default), `policy` (only to services the KDC marks ok-as-delegate), `always`' -r -f -a "none\t'Never forward the ticket-granting ticket'
policy\t'Only to services the KDC marks ok-as-delegate'
always\t'Always'"
complete -c kerbside -n "__fish_kerbside_using_subcommand tunnel" -l channel-binding -d 'Pass the TLS channel binding (RFC 5929 tls-server-end-point) to Kerberos on HTTPS; `off` for servers that reject it' -r -f -a "on\t'Enabled'
off\t'Disabled'"
complete -c kerbside -n "__fish_kerbside_using_subcommand tunnel" -l max-auth-rounds -d 'Give up after this many 401 responses to one request' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand tunnel" -l keytab -d 'Get Kerberos tickets with this client keytab (like `kinit -k -t FILE`), for the principal given with -u or the keytab\'s first' -r -F
complete -c kerbside -n "__fish_kerbside_using_subcommand tunnel" -s u -l user -d 'User for authentication, `USER[:PASSWORD]`. With Negotiate: the Kerberos principal; its ticket is used if the cache has one, else the password gets one (asked for on the terminal when not given). `-u :` means "my ticket", as in curl. With NTLM, Digest and Basic: the user name (`DOMAIN\\\\USER` for NTLM; such a name is never taken for a Kerberos principal) and password. Without -u, the keyring file ($KERBSIDE_KEYRING, else ~/.config/kerbside/keyring.toml; refused unless mode 600) may hold a password for the host (for Negotiate, used only when there is no ticket)' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand tunnel" -l allow-http-auth -d 'Allow credentials over plain http://: for the URL\'s host, or with `=HOST` for that host (repeatable). Anyone on the network path can then steal or replay them' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand tunnel" -l cacert -d 'Trust only the CA certificates in this PEM file instead of the system\'s' -r -F
complete -c kerbside -n "__fish_kerbside_using_subcommand tunnel" -l connect-timeout -d 'Give up connecting after SECS seconds (fractions allowed, e.g. 0.5): name lookup, TCP connect, a proxy\'s CONNECT and the TLS handshake. Default 30; 0 means the default' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand tunnel" -s m -l max-time -d 'Give up on the whole transfer after SECS seconds (fractions allowed): connecting, every authentication leg, the response and its body. Default: no limit (0 too). The exit status of a timeout is 28, as curl\'s' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand tunnel" -s x -l proxy -d 'Go through this HTTP proxy (`http://host:port` or `host:port`); `https://` URLs go through a CONNECT tunnel. A `407` with `Proxy-Authenticate: Negotiate` is answered with a ticket for HTTP@<proxy host>, which — the proxy being plain HTTP — needs `--allow-http-auth=<proxy host>`. Default: `http_proxy`, `https_proxy`/`HTTPS_PROXY`, `all_proxy`/`ALL_PROXY` from the environment, as curl reads them (upper-case `HTTP_PROXY` is never read: under CGI it is the client\'s `Proxy:` header)' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand tunnel" -l noproxy -d 'Hosts to reach without the proxy, comma-separated: names (with their subdomains), IP addresses, CIDR ranges, `*` for all; default `no_proxy` or `NO_PROXY` from the environment' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand tunnel" -l allow-remote -d 'Listen on a non-loopback address. Anyone who can reach it then uses your Kerberos identity'
complete -c kerbside -n "__fish_kerbside_using_subcommand tunnel" -s v -l verbose -d 'Log each request and each authentication step on standard error'
complete -c kerbside -n "__fish_kerbside_using_subcommand tunnel" -l negotiate -d 'Answer `401 Negotiate` (Kerberos through SPNEGO)'
complete -c kerbside -n "__fish_kerbside_using_subcommand tunnel" -l ntlm -d 'Answer NTLM (NTLMv2 only, with the user and password of -u DOMAIN\\\\USER:PASS or the keyring). The whole exchange runs on one HTTP/1.1 connection'
complete -c kerbside -n "__fish_kerbside_using_subcommand tunnel" -l digest -d 'Answer Digest (RFC 7616: SHA-256, SHA-512/256; MD5 only with --allow-digest-md5)'
complete -c kerbside -n "__fish_kerbside_using_subcommand tunnel" -l basic -d 'Answer Basic (the password itself, merely encoded: HTTPS only unless --allow-http-auth)'
complete -c kerbside -n "__fish_kerbside_using_subcommand tunnel" -l anyauth -d 'Answer the strongest scheme the server offers (Negotiate > NTLM > Digest > Basic) that kerbside holds credentials for: Negotiate needs a Kerberos ticket (or -u with a password), the others a user name and password'
complete -c kerbside -n "__fish_kerbside_using_subcommand tunnel" -l allow-digest-md5 -d 'Answer Digest challenges that offer only MD5 (old servers such as Apache\'s mod_auth_digest). MD5 is broken; a man in the middle could strip stronger offers'
complete -c kerbside -n "__fish_kerbside_using_subcommand tunnel" -l allow-downgrade -d 'When a stronger scheme failed (wrong password, rejected ticket), answer a weaker one the server also offers. Off by default: a man in the middle could force that'
complete -c kerbside -n "__fish_kerbside_using_subcommand tunnel" -l negotiate-ntlm -d 'With no Kerberos ticket, answer Negotiate with NTLM inside SPNEGO (as Windows does). Weaker than Kerberos, so off by default'
complete -c kerbside -n "__fish_kerbside_using_subcommand tunnel" -s n -l netrc -d 'Also take user names and passwords from ~/.netrc (or $NETRC) for NTLM, Digest and Basic'
complete -c kerbside -n "__fish_kerbside_using_subcommand tunnel" -l negotiate-preemptive -d 'Send the Negotiate token with the first request instead of waiting for a 401 (never over plain HTTP unless allowed). Without it, the client still does so for origins an earlier request of the same run learned want Negotiate'
complete -c kerbside -n "__fish_kerbside_using_subcommand tunnel" -l spn-canonicalize -d 'Follow DNS (CNAMEs) to the canonical host name for the service name. Weaker: a spoofed DNS answer then picks which service gets your ticket'
complete -c kerbside -n "__fish_kerbside_using_subcommand tunnel" -l spn-port -d 'Put a non-default port into the service name (`HTTP/host:port`)'
complete -c kerbside -n "__fish_kerbside_using_subcommand tunnel" -s k -l insecure -d 'Do not verify the server\'s TLS certificate (the connection is then open to a man in the middle)'
complete -c kerbside -n "__fish_kerbside_using_subcommand tunnel" -l http1.1 -d 'Use HTTP/1.1 only (by default HTTP/2 is offered on TLS)'
complete -c kerbside -n "__fish_kerbside_using_subcommand tunnel" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kerbside -n "__fish_kerbside_using_subcommand proxy" -l listen -d 'Address to listen on' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand proxy" -l pac -d 'A PAC file (proxy auto-config), a path or an http:// or https:// URL: FindProxyForURL decides each request\'s route (DIRECT, PROXY and fallbacks, in order; HTTPS and SOCKS entries are skipped). Evaluated on a thread of its own with a time and memory limit; re-read when it changes. One that cannot be fetched or run means DIRECT, with a warning. Not with --proxy' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand proxy" -l pac-refresh -d 'How often a PAC URL is fetched again, in seconds (a file is looked at every second)' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand proxy" -l auth-proxies -d 'Upstream proxies that may receive your credentials, comma-separated host patterns (as --noproxy). Default: the hosts given with --proxy, and the PAC server\'s domain (wpad.corp.example: corp.example). Any other upstream (a PAC file\'s or the environment\'s) is used without credentials' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand proxy" -l allow -d 'Client addresses that may use the proxy, as CIDR ranges or addresses (repeatable or comma-separated). Default: 127.0.0.0/8 and ::1' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand proxy" -l proxy-retry-after -d 'How long an upstream that failed is tried last, in seconds' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand proxy" -l metrics -d 'Serve Prometheus metrics at http://ADDR/metrics' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand proxy" -l check -d 'Print the route and authentication decision for URL, and exit' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand proxy" -l log-format -d 'Log format: `text` (default) or `json`' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand proxy" -l mutual -d 'Mutual authentication: `required` (the server must prove itself with a final token), `optional` (check the token if sent), `off`' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand proxy" -l spn -d 'Kerberos service name instead of HTTP@<host of the URL>: `NAME` for every host, or `HOST=NAME` for one host (repeatable). NAME is `HTTP@host` or `HTTP/host@REALM`' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand proxy" -l delegation -d 'Forward your ticket-granting ticket: `none` (default), `policy` (only to services the KDC marks ok-as-delegate), `always`' -r -f -a "none\t'Never forward the ticket-granting ticket'
policy\t'Only to services the KDC marks ok-as-delegate'
always\t'Always'"
complete -c kerbside -n "__fish_kerbside_using_subcommand proxy" -l channel-binding -d 'Pass the TLS channel binding (RFC 5929 tls-server-end-point) to Kerberos on HTTPS; `off` for servers that reject it' -r -f -a "on\t'Enabled'
off\t'Disabled'"
complete -c kerbside -n "__fish_kerbside_using_subcommand proxy" -l max-auth-rounds -d 'Give up after this many 401 responses to one request' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand proxy" -l keytab -d 'Get Kerberos tickets with this client keytab (like `kinit -k -t FILE`), for the principal given with -u or the keytab\'s first' -r -F
complete -c kerbside -n "__fish_kerbside_using_subcommand proxy" -s u -l user -d 'User for authentication, `USER[:PASSWORD]`. With Negotiate: the Kerberos principal; its ticket is used if the cache has one, else the password gets one (asked for on the terminal when not given). `-u :` means "my ticket", as in curl. With NTLM, Digest and Basic: the user name (`DOMAIN\\\\USER` for NTLM; such a name is never taken for a Kerberos principal) and password. Without -u, the keyring file ($KERBSIDE_KEYRING, else ~/.config/kerbside/keyring.toml; refused unless mode 600) may hold a password for the host (for Negotiate, used only when there is no ticket)' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand proxy" -l allow-http-auth -d 'Allow credentials over plain http://: for the URL\'s host, or with `=HOST` for that host (repeatable). Anyone on the network path can then steal or replay them' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand proxy" -l cacert -d 'Trust only the CA certificates in this PEM file instead of the system\'s' -r -F
complete -c kerbside -n "__fish_kerbside_using_subcommand proxy" -l connect-timeout -d 'Give up connecting after SECS seconds (fractions allowed, e.g. 0.5): name lookup, TCP connect, a proxy\'s CONNECT and the TLS handshake. Default 30; 0 means the default' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand proxy" -s m -l max-time -d 'Give up on the whole transfer after SECS seconds (fractions allowed): connecting, every authentication leg, the response and its body. Default: no limit (0 too). The exit status of a timeout is 28, as curl\'s' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand proxy" -s x -l proxy -d 'Upstream proxy, `http://host:port` or `host:port`; comma-separated or repeated for failover, tried in order (one that cannot be reached or answers 5xx to CONNECT is tried last for --proxy-retry-after). Default: https_proxy (for CONNECT) and http_proxy (plain HTTP) from the environment, lower case only' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand proxy" -l noproxy -d 'Hosts reached directly, comma-separated: names (with their subdomains), .suffix, *.suffix, wildcards (build-*.corp), addresses, CIDR ranges, * for all. Nothing is bypassed unless listed (suggested: localhost,127.0.0.0/8,::1). Default: no_proxy from the environment when the upstreams come from it' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand proxy" -l allow-other-users -d 'Let programs of other users of this machine use the proxy (and your identity). By default, on Linux, a loopback client whose socket another user owns gets 403'
complete -c kerbside -n "__fish_kerbside_using_subcommand proxy" -l origin-auth -d 'Answer an origin\'s `401` Negotiate/NTLM for plain-HTTP requests with your credentials (as `kerbside tunnel` does). HTTPS through CONNECT is never touched'
complete -c kerbside -n "__fish_kerbside_using_subcommand proxy" -s v -l verbose -d 'Log each route decision and authentication step (secrets redacted)'
complete -c kerbside -n "__fish_kerbside_using_subcommand proxy" -l negotiate -d 'Answer `401 Negotiate` (Kerberos through SPNEGO)'
complete -c kerbside -n "__fish_kerbside_using_subcommand proxy" -l ntlm -d 'Answer NTLM (NTLMv2 only, with the user and password of -u DOMAIN\\\\USER:PASS or the keyring). The whole exchange runs on one HTTP/1.1 connection'
complete -c kerbside -n "__fish_kerbside_using_subcommand proxy" -l digest -d 'Answer Digest (RFC 7616: SHA-256, SHA-512/256; MD5 only with --allow-digest-md5)'
complete -c kerbside -n "__fish_kerbside_using_subcommand proxy" -l basic -d 'Answer Basic (the password itself, merely encoded: HTTPS only unless --allow-http-auth)'
complete -c kerbside -n "__fish_kerbside_using_subcommand proxy" -l anyauth -d 'Answer the strongest scheme the server offers (Negotiate > NTLM > Digest > Basic) that kerbside holds credentials for: Negotiate needs a Kerberos ticket (or -u with a password), the others a user name and password'
complete -c kerbside -n "__fish_kerbside_using_subcommand proxy" -l allow-digest-md5 -d 'Answer Digest challenges that offer only MD5 (old servers such as Apache\'s mod_auth_digest). MD5 is broken; a man in the middle could strip stronger offers'
complete -c kerbside -n "__fish_kerbside_using_subcommand proxy" -l allow-downgrade -d 'When a stronger scheme failed (wrong password, rejected ticket), answer a weaker one the server also offers. Off by default: a man in the middle could force that'
complete -c kerbside -n "__fish_kerbside_using_subcommand proxy" -l negotiate-ntlm -d 'With no Kerberos ticket, answer Negotiate with NTLM inside SPNEGO (as Windows does). Weaker than Kerberos, so off by default'
complete -c kerbside -n "__fish_kerbside_using_subcommand proxy" -s n -l netrc -d 'Also take user names and passwords from ~/.netrc (or $NETRC) for NTLM, Digest and Basic'
complete -c kerbside -n "__fish_kerbside_using_subcommand proxy" -l negotiate-preemptive -d 'Send the Negotiate token with the first request instead of waiting for a 401 (never over plain HTTP unless allowed). Without it, the client still does so for origins an earlier request of the same run learned want Negotiate'
complete -c kerbside -n "__fish_kerbside_using_subcommand proxy" -l spn-canonicalize -d 'Follow DNS (CNAMEs) to the canonical host name for the service name. Weaker: a spoofed DNS answer then picks which service gets your ticket'
complete -c kerbside -n "__fish_kerbside_using_subcommand proxy" -l spn-port -d 'Put a non-default port into the service name (`HTTP/host:port`)'
complete -c kerbside -n "__fish_kerbside_using_subcommand proxy" -s k -l insecure -d 'Do not verify the server\'s TLS certificate (the connection is then open to a man in the middle)'
complete -c kerbside -n "__fish_kerbside_using_subcommand proxy" -l http1.1 -d 'Use HTTP/1.1 only (by default HTTP/2 is offered on TLS)'
complete -c kerbside -n "__fish_kerbside_using_subcommand proxy" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kerbside -n "__fish_kerbside_using_subcommand bench" -l mode -d 'What each request does' -r -f -a "plain\t'Keep-alive requests without authentication'
per-request\t'A fresh Negotiate token on every keep-alive request'
handshake\t'A new connection for each exchange: request, 401, token, final response'
reuse\t'A token once per connection, then plain requests (with the session cookie the server set, if any)'"
complete -c kerbside -n "__fish_kerbside_using_subcommand bench" -s c -l connections -d 'How many connections run requests at once' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand bench" -s d -l duration -d 'Run for this long (`500ms`, `5s`, `1m`); with --requests, whichever ends first. Without either, 10 seconds' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand bench" -s n -l requests -d 'Send this many requests (exchanges in handshake mode)' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand bench" -l tokens -d 'The most tokens made ahead when only --duration bounds the run' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand bench" -l expect-status -d 'The status a successful request gets' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand bench" -l timeout -d 'Give up on a request (counted as a `timeout` error) after this long' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand bench" -l server-pid -d 'Report the CPU time this server process (and the children it reaped) used per successful request, from /proc/PID/stat; repeat (or separate with commas) to sum several processes' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand bench" -l spn -d 'Kerberos service name instead of HTTP@<host of the URL>: `HTTP@host` or `HTTP/host@REALM`' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand bench" -l mutual -d 'Mutual authentication: `required` (every authenticated response must carry a final token that verifies), `optional` (verify the token when sent), `off`' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand bench" -l channel-binding -d 'Bind tokens to the TLS channel (RFC 5929 tls-server-end-point) on HTTPS' -r -f -a "on\t'Enabled'
off\t'Disabled'"
complete -c kerbside -n "__fish_kerbside_using_subcommand bench" -l ccache -d 'Use this ticket cache instead of the default (KRB5CCNAME)' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand bench" -l keytab -d 'Get tickets with this client keytab, kept in a memory cache of this process' -r -F
complete -c kerbside -n "__fish_kerbside_using_subcommand bench" -l principal -d 'The principal to get tickets for with --keytab (default: the keytab\'s first)' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand bench" -l cacert -d 'Trust only the CA certificates in this PEM file instead of the system\'s' -r -F
complete -c kerbside -n "__fish_kerbside_using_subcommand bench" -l allow-remote -d 'Allow a target that is not on a loopback address'
complete -c kerbside -n "__fish_kerbside_using_subcommand bench" -l server-children -d 'Count the children of each --server-pid too (e.g. Apache\'s worker processes)'
complete -c kerbside -n "__fish_kerbside_using_subcommand bench" -l server-memory -d 'Report the servers\' memory growth per open idle connection after the run'
complete -c kerbside -n "__fish_kerbside_using_subcommand bench" -l json -d 'Print the report as JSON (and no progress or notes on standard error)'
complete -c kerbside -n "__fish_kerbside_using_subcommand bench" -s k -l insecure -d 'Do not verify the server\'s TLS certificate'
complete -c kerbside -n "__fish_kerbside_using_subcommand bench" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kerbside -n "__fish_kerbside_using_subcommand ntlm-passwd" -s h -l help -d 'Print help'
complete -c kerbside -n "__fish_kerbside_using_subcommand digest-passwd" -l algorithm -d 'The hash of the line' -r -f -a "sha-256\t'SHA-256 (RFC 7616)'
md5\t'MD5 (RFC 2617; old clients only)'"
complete -c kerbside -n "__fish_kerbside_using_subcommand digest-passwd" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kerbside -n "__fish_kerbside_using_subcommand doctor" -l kdc-timeout -d 'How long each KDC may take to answer, per transport (UDP, TCP)' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand doctor" -l header-limit -d 'Also check the Authorization header against this limit in bytes (a proxy\'s or server\'s in front of the URL)' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand doctor" -l mutual -d 'Mutual authentication: `required` (the server must prove itself with a final token), `optional` (check the token if sent), `off`' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand doctor" -l spn -d 'Kerberos service name instead of HTTP@<host of the URL>: `NAME` for every host, or `HOST=NAME` for one host (repeatable). NAME is `HTTP@host` or `HTTP/host@REALM`' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand doctor" -l delegation -d 'Forward your ticket-granting ticket: `none` (default), `policy` (only to services the KDC marks ok-as-delegate), `always`' -r -f -a "none\t'Never forward the ticket-granting ticket'
policy\t'Only to services the KDC marks ok-as-delegate'
always\t'Always'"
complete -c kerbside -n "__fish_kerbside_using_subcommand doctor" -l channel-binding -d 'Pass the TLS channel binding (RFC 5929 tls-server-end-point) to Kerberos on HTTPS; `off` for servers that reject it' -r -f -a "on\t'Enabled'
off\t'Disabled'"
complete -c kerbside -n "__fish_kerbside_using_subcommand doctor" -l max-auth-rounds -d 'Give up after this many 401 responses to one request' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand doctor" -l keytab -d 'Get Kerberos tickets with this client keytab (like `kinit -k -t FILE`), for the principal given with -u or the keytab\'s first' -r -F
complete -c kerbside -n "__fish_kerbside_using_subcommand doctor" -s u -l user -d 'User for authentication, `USER[:PASSWORD]`. With Negotiate: the Kerberos principal; its ticket is used if the cache has one, else the password gets one (asked for on the terminal when not given). `-u :` means "my ticket", as in curl. With NTLM, Digest and Basic: the user name (`DOMAIN\\\\USER` for NTLM; such a name is never taken for a Kerberos principal) and password. Without -u, the keyring file ($KERBSIDE_KEYRING, else ~/.config/kerbside/keyring.toml; refused unless mode 600) may hold a password for the host (for Negotiate, used only when there is no ticket)' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand doctor" -l allow-http-auth -d 'Allow credentials over plain http://: for the URL\'s host, or with `=HOST` for that host (repeatable). Anyone on the network path can then steal or replay them' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand doctor" -l cacert -d 'Trust only the CA certificates in this PEM file instead of the system\'s' -r -F
complete -c kerbside -n "__fish_kerbside_using_subcommand doctor" -l connect-timeout -d 'Give up connecting after SECS seconds (fractions allowed, e.g. 0.5): name lookup, TCP connect, a proxy\'s CONNECT and the TLS handshake. Default 30; 0 means the default' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand doctor" -s m -l max-time -d 'Give up on the whole transfer after SECS seconds (fractions allowed): connecting, every authentication leg, the response and its body. Default: no limit (0 too). The exit status of a timeout is 28, as curl\'s' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand doctor" -s x -l proxy -d 'Go through this HTTP proxy (`http://host:port` or `host:port`); `https://` URLs go through a CONNECT tunnel. A `407` with `Proxy-Authenticate: Negotiate` is answered with a ticket for HTTP@<proxy host>, which — the proxy being plain HTTP — needs `--allow-http-auth=<proxy host>`. Default: `http_proxy`, `https_proxy`/`HTTPS_PROXY`, `all_proxy`/`ALL_PROXY` from the environment, as curl reads them (upper-case `HTTP_PROXY` is never read: under CGI it is the client\'s `Proxy:` header)' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand doctor" -l noproxy -d 'Hosts to reach without the proxy, comma-separated: names (with their subdomains), IP addresses, CIDR ranges, `*` for all; default `no_proxy` or `NO_PROXY` from the environment' -r
complete -c kerbside -n "__fish_kerbside_using_subcommand doctor" -l json -d 'Print the findings as JSON (an array of {check, level, found, what_to_do, cause}) instead of lines'
complete -c kerbside -n "__fish_kerbside_using_subcommand doctor" -l negotiate -d 'Answer `401 Negotiate` (Kerberos through SPNEGO)'
complete -c kerbside -n "__fish_kerbside_using_subcommand doctor" -l ntlm -d 'Answer NTLM (NTLMv2 only, with the user and password of -u DOMAIN\\\\USER:PASS or the keyring). The whole exchange runs on one HTTP/1.1 connection'
complete -c kerbside -n "__fish_kerbside_using_subcommand doctor" -l digest -d 'Answer Digest (RFC 7616: SHA-256, SHA-512/256; MD5 only with --allow-digest-md5)'
complete -c kerbside -n "__fish_kerbside_using_subcommand doctor" -l basic -d 'Answer Basic (the password itself, merely encoded: HTTPS only unless --allow-http-auth)'
complete -c kerbside -n "__fish_kerbside_using_subcommand doctor" -l anyauth -d 'Answer the strongest scheme the server offers (Negotiate > NTLM > Digest > Basic) that kerbside holds credentials for: Negotiate needs a Kerberos ticket (or -u with a password), the others a user name and password'
complete -c kerbside -n "__fish_kerbside_using_subcommand doctor" -l allow-digest-md5 -d 'Answer Digest challenges that offer only MD5 (old servers such as Apache\'s mod_auth_digest). MD5 is broken; a man in the middle could strip stronger offers'
complete -c kerbside -n "__fish_kerbside_using_subcommand doctor" -l allow-downgrade -d 'When a stronger scheme failed (wrong password, rejected ticket), answer a weaker one the server also offers. Off by default: a man in the middle could force that'
complete -c kerbside -n "__fish_kerbside_using_subcommand doctor" -l negotiate-ntlm -d 'With no Kerberos ticket, answer Negotiate with NTLM inside SPNEGO (as Windows does). Weaker than Kerberos, so off by default'
complete -c kerbside -n "__fish_kerbside_using_subcommand doctor" -s n -l netrc -d 'Also take user names and passwords from ~/.netrc (or $NETRC) for NTLM, Digest and Basic'
complete -c kerbside -n "__fish_kerbside_using_subcommand doctor" -l negotiate-preemptive -d 'Send the Negotiate token with the first request instead of waiting for a 401 (never over plain HTTP unless allowed). Without it, the client still does so for origins an earlier request of the same run learned want Negotiate'
complete -c kerbside -n "__fish_kerbside_using_subcommand doctor" -l spn-canonicalize -d 'Follow DNS (CNAMEs) to the canonical host name for the service name. Weaker: a spoofed DNS answer then picks which service gets your ticket'
complete -c kerbside -n "__fish_kerbside_using_subcommand doctor" -l spn-port -d 'Put a non-default port into the service name (`HTTP/host:port`)'
complete -c kerbside -n "__fish_kerbside_using_subcommand doctor" -s k -l insecure -d 'Do not verify the server\'s TLS certificate (the connection is then open to a man in the middle)'
complete -c kerbside -n "__fish_kerbside_using_subcommand doctor" -l http1.1 -d 'Use HTTP/1.1 only (by default HTTP/2 is offered on TLS)'
complete -c kerbside -n "__fish_kerbside_using_subcommand doctor" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kerbside -n "__fish_kerbside_using_subcommand man" -l out -d 'Write the pages into this directory (`kerbside.1` and one `kerbside-SUBCOMMAND.1` per subcommand), creating it if needed' -r -F
complete -c kerbside -n "__fish_kerbside_using_subcommand man" -s h -l help -d 'Print help'
complete -c kerbside -n "__fish_kerbside_using_subcommand completions" -s h -l help -d 'Print help'
complete -c kerbside -n "__fish_kerbside_using_subcommand help; and not __fish_seen_subcommand_from fetch gate tunnel proxy bench ntlm-passwd digest-passwd doctor man completions help" -f -a "fetch" -d 'Fetch a URL, authenticating with Kerberos when the server asks (like curl)'
complete -c kerbside -n "__fish_kerbside_using_subcommand help; and not __fish_seen_subcommand_from fetch gate tunnel proxy bench ntlm-passwd digest-passwd doctor man completions help" -f -a "gate" -d 'Run an authenticating reverse proxy: Negotiate with a keytab in front of an upstream'
complete -c kerbside -n "__fish_kerbside_using_subcommand help; and not __fish_seen_subcommand_from fetch gate tunnel proxy bench ntlm-passwd digest-passwd doctor man completions help" -f -a "tunnel" -d 'Forward a local plain-HTTP port to a kerberized server, authenticating with your ticket (for hg, pip, git... that cannot speak Negotiate)'
complete -c kerbside -n "__fish_kerbside_using_subcommand help; and not __fish_seen_subcommand_from fetch gate tunnel proxy bench ntlm-passwd digest-passwd doctor man completions help" -f -a "proxy" -d 'Run a local forward proxy that authenticates to the corporate proxy with your credentials (Negotiate, NTLM, Basic), for pip, git, npm, curl... (like cntlm, px)'
complete -c kerbside -n "__fish_kerbside_using_subcommand help; and not __fish_seen_subcommand_from fetch gate tunnel proxy bench ntlm-passwd digest-passwd doctor man completions help" -f -a "bench" -d 'Load a server with requests that speak Negotiate, and report throughput, latency, errors and the server\'s CPU per request'
complete -c kerbside -n "__fish_kerbside_using_subcommand help; and not __fish_seen_subcommand_from fetch gate tunnel proxy bench ntlm-passwd digest-passwd doctor man completions help" -f -a "ntlm-passwd" -d 'Add or change a user of the gate\'s NTLM users file (`--ntlm-users`); the password is read from standard input without echo'
complete -c kerbside -n "__fish_kerbside_using_subcommand help; and not __fish_seen_subcommand_from fetch gate tunnel proxy bench ntlm-passwd digest-passwd doctor man completions help" -f -a "digest-passwd" -d 'Add or change a user of the gate\'s Digest users file (`--digest-users`, htdigest lines); the password is read from standard input without echo'
complete -c kerbside -n "__fish_kerbside_using_subcommand help; and not __fish_seen_subcommand_from fetch gate tunnel proxy bench ntlm-passwd digest-passwd doctor man completions help" -f -a "doctor" -d 'Check this machine\'s Kerberos setup and, for a URL, everything between you and the server; one line per check with what to do'
complete -c kerbside -n "__fish_kerbside_using_subcommand help; and not __fish_seen_subcommand_from fetch gate tunnel proxy bench ntlm-passwd digest-passwd doctor man completions help" -f -a "man" -d 'Write the manual pages (kerbside.1 and one per subcommand) into a directory'
complete -c kerbside -n "__fish_kerbside_using_subcommand help; and not __fish_seen_subcommand_from fetch gate tunnel proxy bench ntlm-passwd digest-passwd doctor man completions help" -f -a "completions" -d 'Print shell completions for bash, zsh, fish, elvish or powershell, e.g. `kerbside completions bash > /etc/bash_completion.d/kerbside`'
complete -c kerbside -n "__fish_kerbside_using_subcommand help; and not __fish_seen_subcommand_from fetch gate tunnel proxy bench ntlm-passwd digest-passwd doctor man completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
