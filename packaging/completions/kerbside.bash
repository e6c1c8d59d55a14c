_kerbside() {
    local i cur prev opts cmd
    COMPREPLY=()
    if [[ "${BASH_VERSINFO[0]}" -ge 4 ]]; then
        cur="$2"
    else
        cur="${COMP_WORDS[COMP_CWORD]}"
    fi
    prev="$3"
    cmd=""
    opts=""

    for i in "${COMP_WORDS[@]:0:COMP_CWORD}"
    do
        case "${cmd},${i}" in
            ",$1")
                cmd="kerbside"
                ;;
            kerbside,bench)
                cmd="kerbside__subcmd__bench"
                ;;
            kerbside,completions)
                cmd="kerbside__subcmd__completions"
                ;;
            kerbside,digest-passwd)
                cmd="kerbside__subcmd__digest__subcmd__passwd"
                ;;
            kerbside,doctor)
                cmd="kerbside__subcmd__doctor"
                ;;
            kerbside,fetch)
                cmd="kerbside__subcmd__fetch"
                ;;
            kerbside,gate)
                cmd="kerbside__subcmd__gate"
                ;;
            kerbside,help)
                cmd="kerbside__subcmd__help"
                ;;
            kerbside,man)
                cmd="kerbside__subcmd__man"
                ;;
            kerbside,nt-hash)
                cmd="kerbside__subcmd__nt__subcmd__hash"
                ;;
            kerbside,ntlm-passwd)
                cmd="kerbside__subcmd__ntlm__subcmd__passwd"
                ;;
            kerbside,proxy)
                cmd="kerbside__subcmd__proxy"
                ;;
            kerbside,tunnel)
                cmd="kerbside__subcmd__tunnel"
                ;;
            kerbside__subcmd__help,bench)
                cmd="kerbside__subcmd__help__subcmd__bench"
                ;;
            kerbside__subcmd__help,completions)
                cmd="kerbside__subcmd__help__subcmd__completions"
                ;;
            kerbside__subcmd__help,digest-passwd)
                cmd="kerbside__subcmd__help__subcmd__digest__subcmd__passwd"
                ;;
            kerbside__subcmd__help,doctor)
                cmd="kerbside__subcmd__help__subcmd__doctor"
                ;;
            kerbside__subcmd__help,fetch)
                cmd="kerbside__subcmd__help__subcmd__fetch"
                ;;
            kerbside__subcmd__help,gate)
                cmd="kerbside__subcmd__help__subcmd__gate"
                ;;
            kerbside__subcmd__help,help)
                cmd="kerbside__subcmd__help__subcmd__help"
                ;;
            kerbside__subcmd__help,man)
                cmd="kerbside__subcmd__help__subcmd__man"
                ;;
            kerbside__subcmd__help,nt-hash)
                cmd="kerbside__subcmd__help__subcmd__nt__subcmd__hash"
                ;;
            kerbside__subcmd__help,ntlm-passwd)
                cmd="kerbside__subcmd__help__subcmd__ntlm__subcmd__passwd"
                ;;
            kerbside__subcmd__help,proxy)
                cmd="kerbside__subcmd__help__subcmd__proxy"
                ;;
            kerbside__subcmd__help,tunnel)
                cmd="kerbside__subcmd__help__subcmd__tunnel"
                ;;
            *)
                ;;
        esac
    done

    case "${cmd}" in
        kerbside)
            opts="-h -V --help --version fetch gate tunnel proxy bench ntlm-passwd nt-hash digest-passwd doctor man completions help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 1 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        kerbside__subcmd__bench)
            opts="-c -d -n -k -h --mode --connections --duration --requests --tokens --expect-status --timeout --allow-remote --server-pid --server-children --server-memory --idle --json --spn --mutual --channel-binding --ccache --keytab --principal --cacert --insecure --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --mode)
                    COMPREPLY=($(compgen -W "plain per-request handshake reuse" -- "${cur}"))
                    return 0
                    ;;
                --connections)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -c)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --duration)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -d)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --requests)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -n)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --tokens)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --expect-status)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --timeout)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --server-pid)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --idle)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --spn)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --mutual)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --channel-binding)
                    COMPREPLY=($(compgen -W "on off" -- "${cur}"))
                    return 0
                    ;;
                --ccache)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --keytab)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --principal)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --cacert)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        kerbside__subcmd__completions)
            opts="-h --help bash elvish fish powershell zsh"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        kerbside__subcmd__digest__subcmd__passwd)
            opts="-h --algorithm --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --algorithm)
                    COMPREPLY=($(compgen -W "sha-256 md5" -- "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        kerbside__subcmd__doctor)
            opts="-n -u -k -m -x -h --json --kdc-timeout --header-limit --negotiate --ntlm --digest --basic --anyauth --allow-digest-md5 --allow-downgrade --negotiate-ntlm --netrc --negotiate-preemptive --mutual --spn --spn-canonicalize --spn-port --delegation --channel-binding --max-auth-rounds --keytab --user --allow-http-auth --insecure --cacert --http1.1 --connect-timeout --max-time --proxy --proxy-cacert --noproxy --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --kdc-timeout)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --header-limit)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --mutual)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --spn)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --delegation)
                    COMPREPLY=($(compgen -W "none policy always" -- "${cur}"))
                    return 0
                    ;;
                --channel-binding)
                    COMPREPLY=($(compgen -W "on off" -- "${cur}"))
                    return 0
                    ;;
                --max-auth-rounds)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --keytab)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --user)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -u)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --allow-http-auth)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --cacert)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --connect-timeout)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --max-time)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -m)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --proxy)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -x)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --proxy-cacert)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --noproxy)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        kerbside__subcmd__fetch)
            opts="-n -u -k -m -x -X -d -H -o -i -v -s -f -h --negotiate --ntlm --digest --basic --anyauth --allow-digest-md5 --allow-downgrade --negotiate-ntlm --netrc --negotiate-preemptive --mutual --spn --spn-canonicalize --spn-port --delegation --channel-binding --max-auth-rounds --keytab --user --allow-http-auth --insecure --cacert --http1.1 --connect-timeout --max-time --proxy --proxy-cacert --noproxy --request --data --header --output --include --verbose --silent --fail --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --mutual)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --spn)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --delegation)
                    COMPREPLY=($(compgen -W "none policy always" -- "${cur}"))
                    return 0
                    ;;
                --channel-binding)
                    COMPREPLY=($(compgen -W "on off" -- "${cur}"))
                    return 0
                    ;;
                --max-auth-rounds)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --keytab)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --user)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -u)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --allow-http-auth)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --cacert)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --connect-timeout)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --max-time)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -m)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --proxy)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -x)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --proxy-cacert)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --noproxy)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --request)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -X)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --data)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -d)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --header)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -H)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --output)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -o)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        kerbside__subcmd__gate)
            opts="-h --config --listen --tls-cert --tls-key --keytab --acceptor --replay-cache --replay-cache-unavailable --upstream --cgi --forward-auth --forward-auth-trusted --forward-auth-cert --proxy-protocol --health-path --whoami-path --shutdown-delay --proxy-protocol-trusted --identity-header --scheme-header --identity-key --auth --session-key --user-map --metrics --channel-binding --basic-fallback --basic-realm --ntlm-users --ntlm-in-negotiate --ntlm-winbind --netbios-domain --ntlm-winbind-smb-conf --digest-users --digest-realm --digest-md5 --digest-nonce-lifetime --basic-users --check --check-principal --check-keytab --check-password-file --check-spn --delegation-dir --s4u2proxy --upstream-timeout --max-connections --max-body --log-format --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --listen)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --tls-cert)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --tls-key)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --keytab)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --acceptor)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --replay-cache)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --replay-cache-unavailable)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --upstream)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --cgi)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --forward-auth)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --forward-auth-trusted)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --forward-auth-cert)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --health-path)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --whoami-path)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --shutdown-delay)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --proxy-protocol-trusted)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --identity-header)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --scheme-header)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --identity-key)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --auth)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --session-key)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --user-map)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --metrics)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --channel-binding)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --basic-realm)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --ntlm-users)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --netbios-domain)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --ntlm-winbind-smb-conf)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --digest-users)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --digest-realm)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --digest-nonce-lifetime)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --basic-users)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --check-principal)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --check-keytab)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --check-password-file)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --check-spn)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --delegation-dir)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --s4u2proxy)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --upstream-timeout)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --max-connections)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --max-body)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --log-format)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        kerbside__subcmd__help)
            opts="fetch gate tunnel proxy bench ntlm-passwd nt-hash digest-passwd doctor man completions help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        kerbside__subcmd__help__subcmd__bench)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        kerbside__subcmd__help__subcmd__completions)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        kerbside__subcmd__help__subcmd__digest__subcmd__passwd)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        kerbside__subcmd__help__subcmd__doctor)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        kerbside__subcmd__help__subcmd__fetch)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        kerbside__subcmd__help__subcmd__gate)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        kerbside__subcmd__help__subcmd__help)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        kerbside__subcmd__help__subcmd__man)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        kerbside__subcmd__help__subcmd__nt__subcmd__hash)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        kerbside__subcmd__help__subcmd__ntlm__subcmd__passwd)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        kerbside__subcmd__help__subcmd__proxy)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        kerbside__subcmd__help__subcmd__tunnel)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        kerbside__subcmd__man)
            opts="-h --out --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --out)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        kerbside__subcmd__nt__subcmd__hash)
            opts="-h --host --ntlmv2 --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --host)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        kerbside__subcmd__ntlm__subcmd__passwd)
            opts="-h --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        kerbside__subcmd__proxy)
            opts="-v -n -u -k -m -x -h --listen --pac --pac-refresh --auth-proxies --allow --allow-other-users --origin-auth --proxy-retry-after --metrics --check --verbose --log-format --threads --negotiate --ntlm --digest --basic --anyauth --allow-digest-md5 --allow-downgrade --negotiate-ntlm --netrc --negotiate-preemptive --mutual --spn --spn-canonicalize --spn-port --delegation --channel-binding --max-auth-rounds --keytab --user --allow-http-auth --insecure --cacert --http1.1 --connect-timeout --max-time --proxy-cacert --proxy --noproxy --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --listen)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --pac)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --pac-refresh)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --auth-proxies)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --allow)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --proxy-retry-after)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --metrics)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --check)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --log-format)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --threads)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --mutual)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --spn)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --delegation)
                    COMPREPLY=($(compgen -W "none policy always" -- "${cur}"))
                    return 0
                    ;;
                --channel-binding)
                    COMPREPLY=($(compgen -W "on off" -- "${cur}"))
                    return 0
                    ;;
                --max-auth-rounds)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --keytab)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --user)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -u)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --allow-http-auth)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --cacert)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --connect-timeout)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --max-time)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -m)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --proxy-cacert)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --proxy)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -x)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --noproxy)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        kerbside__subcmd__tunnel)
            opts="-v -n -u -k -m -x -h --listen --to --allow-remote --allowed-host --verbose --negotiate --ntlm --digest --basic --anyauth --allow-digest-md5 --allow-downgrade --negotiate-ntlm --netrc --negotiate-preemptive --mutual --spn --spn-canonicalize --spn-port --delegation --channel-binding --max-auth-rounds --keytab --user --allow-http-auth --insecure --cacert --http1.1 --connect-timeout --max-time --proxy --proxy-cacert --noproxy --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --listen)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --to)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --allowed-host)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --mutual)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --spn)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --delegation)
                    COMPREPLY=($(compgen -W "none policy always" -- "${cur}"))
                    return 0
                    ;;
                --channel-binding)
                    COMPREPLY=($(compgen -W "on off" -- "${cur}"))
                    return 0
                    ;;
                --max-auth-rounds)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --keytab)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --user)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -u)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --allow-http-auth)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --cacert)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --connect-timeout)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --max-time)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -m)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --proxy)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -x)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --proxy-cacert)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --noproxy)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
    esac
}

if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -F _kerbside -o nosort -o bashdefault -o default kerbside
else
    complete -F _kerbside -o bashdefault -o default kerbside
fi
