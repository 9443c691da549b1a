"""Every semantic check fails and passes, one line per case (yamllint style).

A case is (code, YAML fragment, should the check fire). The fragment is added to a minimal
spec (`version: 1`, `image: {name: t}` unless it sets `image`); passing cases must be free of
that code, failing ones must carry it, and neither may have schema errors (which would stop
the checks from running and let a case pass for the wrong reason).
"""

from __future__ import annotations

import pytest

from vmprep.problems import Severity
from vmprep.spec.checks import CHECKS
from vmprep.spec.pipeline import check_bytes

KEY = "'ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo='"
PH = f"phone_home: {{url: 'https://c.example.com/{{role}}/{{instance_id}}', role: web, trusted_keys: [{KEY}]}}"
PATH_OK = r"'C:\Tools\a.msi'"
EMB = "embedded: {zip: python-3.13.2-embed-amd64.zip, sha256: " + "a" * 64 + "}"
SHA = "f9d35d43770d39092a663e665e82ae1d84a9e0da3d0d10c407acada6a40cd281"


ROLE = "kind: RoleConfig\nrole: web\n"  # a fragment starting so is a config-repository file


def steps(*items: str, extra: str = "") -> str:
    return f"agent: {{{extra}steps: [{', '.join(items)}]}}"


CASES = [
    # platform-setting (vmprep.spec.platforms: what each cloud owns)
    ("platform-setting", "image: {name: t, platform: azure}\nsetup: {computer_name: WEB1}", True),
    (
        "platform-setting",
        "image: {name: t, platform: aws}\nsetup: {product_key: " + "-".join(["ABCDE"] * 5) + "}",
        True,
    ),
    ("platform-setting", "image: {name: t, platform: gce}\nsetup: {copy_profile: true}", True),
    ("platform-setting", "image: {name: t, platform: azure}\nsysprep: {skip_rearm: false}", True),
    ("platform-setting", "image: {name: t, platform: aws}\nsysprep: {vm_mode: true}", True),
    ("platform-setting", "image: {name: t, platform: azure}\nsysprep: {vm_mode: true}", False),
    ("platform-setting", "image: {name: t, platform: azure}\nsetup: {timezone: UTC}", False),
    ("platform-setting", "image: {name: t, platform: hyperv}\nsetup: {computer_name: WEB1}", False),
    ("platform-setting", "image: {name: t, platform: gce}\nsetup: {locale: {ui: de-DE}}", True),
    (
        "platform-setting",
        "image: {name: t, platform: gce}\nsetup: {locale: {system: de-DE, ui: de-DE}}",
        True,
    ),
    ("platform-setting", "image: {name: t, platform: gce}\nsetup: {locale: de-DE}", False),
    (
        "platform-setting",
        "image: {name: t, platform: azure}\nagent: {inputs: {sources: [aws-tags], keys: {site: {values: [a]}}}}",
        True,
    ),
    (
        "platform-setting",
        "image: {name: t, platform: azure}\nagent: {inputs: {sources: [azure-tags, file], file: 'C:\\i.txt', keys: {site: {values: [a]}}}}",
        False,
    ),
    (
        "platform-setting",
        "image: {name: t}\nagent: {inputs: {sources: [aws-tags, gce-attributes], keys: {site: {values: [a]}}}}",
        False,
    ),
    # platform-setting: attestation evidence of another cloud than image.platform
    (
        "platform-setting",
        "image: {name: t, platform: azure}\nagent: {" + PH[:-1] + ", attestation: aws-iid}}",
        True,
    ),
    (
        "platform-setting",
        "image: {name: t}\nagent: {" + PH[:-1] + ", attestation: gce-iit}}",
        True,
    ),
    (
        "platform-setting",
        "image: {name: t, platform: gce}\nagent: {" + PH[:-1] + ", attestation: gce-iit}}",
        False,
    ),
    (
        "platform-setting",
        "image: {name: t, platform: aws}\nagent: {" + PH[:-1] + ", attestation: auto}}",
        False,
    ),
    (
        "platform-setting",
        "image: {name: t, platform: gce}\nagent: {identity: [smbios-uuid], " + PH + "}",
        True,
    ),
    (
        "platform-setting",
        "image: {name: t, platform: gce}\nagent: {identity: [gce-metadata, mac], " + PH + "}",
        False,
    ),
    # deprecated-setting
    ("deprecated-setting", "setup: {oobe: {skip_machine_oobe: true}}", True),
    ("deprecated-setting", "setup: {oobe: {skip_machine_oobe: false}}", False),
    # client-admin-account
    (
        "client-admin-account",
        "image: {name: t, os: windows-11}\nsetup: {administrator: {password: {env: P}}}",
        True,
    ),
    (
        "client-admin-account",
        "image: {name: t, os: windows-10}\nsetup: {accounts: [{name: ops}]}",
        True,
    ),
    (
        "client-admin-account",
        "image: {name: t, os: windows-11}\nsetup: {accounts: [{name: ops, groups: [Administrators]}]}",
        False,
    ),
    (
        "client-admin-account",
        "image: {name: t, os: windows-11}\nsetup: {administrator: {password: {env: P}}, auto_logon: {user: Administrator}}",
        False,
    ),
    ("client-admin-account", "setup: {administrator: {password: {env: P}}}", False),
    # computer-name
    ("computer-name", "setup: {computer_name: WEB.01}", True),
    ("computer-name", "setup: {computer_name: ABCDEFGHIJKLMNOP}", True),
    ("computer-name", "setup: {computer_name: '12345'}", True),
    ("computer-name", "setup: {computer_name: 'WEB 01'}", True),
    ("computer-name", "setup: {computer_name: ''}", True),
    ("computer-name", "setup: {computer_name: 'WEB*'}", True),
    ("computer-name", "setup: {computer_name: 'ÄÖÜÄÖÜÄÖÜ'}", True),  # 18 bytes
    ("computer-name", steps("{id: r, rename_computer: {name: '12345'}}"), True),
    (
        "computer-name",
        steps("{id: r, rename_computer: {name: 'WEB-{n}!'}}", extra="variables: {n: 1}, "),
        True,
    ),
    ("computer-name", steps("{id: r, rename_computer: {name: '*'}}"), True),
    ("computer-name", "setup: {computer_name: WEB-01}", False),
    ("computer-name", "setup: {computer_name: '*'}", False),
    ("computer-name", "setup: {computer_name: ABCDEFGHIJKLMNO}", False),
    ("computer-name", steps("{id: r, rename_computer: {name: '{instance_id}'}}"), False),
    (
        "computer-name",
        steps(
            "{id: r, rename_computer: {name: 'WEB-{site}-{number}'}}",
            extra="variables: {site: a, number: 1}, ",
        ),
        False,
    ),
    # rename-after-join: the join runs before the fetch, the rename needs the config's name
    (
        "rename-after-join",
        steps(
            "{id: j, join_domain: {domain: corp, credentials: {user: u, password: {env: P}}}}",
            "{id: p, phone_home: {}}",
            "{id: r, rename_computer: {name: '{host}'}}",
            extra=PH + ", ",
        ),
        True,
    ),
    (  # fetched first: the agent merges them into one Add-Computer -NewName call
        "rename-after-join",
        steps(
            "{id: p, phone_home: {}}",
            "{id: j, join_domain: {domain: corp, credentials: remote}}",
            "{id: r, rename_computer: {name: '{host}'}}",
            extra=PH + ", ",
        ),
        False,
    ),
    (  # a baked name is known at the join
        "rename-after-join",
        steps(
            "{id: j, join_domain: {domain: corp, credentials: {user: u, password: {env: P}}}}",
            "{id: r, rename_computer: {name: 'WEB-{n}'}}",
            extra="variables: {n: 1}, ",
        ),
        False,
    ),
    (  # name before domain
        "rename-after-join",
        steps(
            "{id: p, phone_home: {}}",
            "{id: r, rename_computer: {name: '{host}'}}",
            "{id: j, join_domain: {domain: corp, credentials: remote}}",
            extra=PH + ", ",
        ),
        False,
    ),
    # inputs (deploy-time inputs, docs/inputs.md)
    ("inputs", f"agent: {{{PH}, inputs: {{sources: [aws-tags], keys: {{role: {{}}}}}}}}", True),
    (
        "inputs",
        f"agent: {{{PH}, inputs: {{sources: [aws-tags], keys: {{role: {{values: [web]}}}}}}}}",
        False,
    ),
    (
        "placeholder",
        steps(
            "{id: r, rename_computer: {name: 'WEB-{site}'}}",
            extra="inputs: {sources: [gce-attributes], keys: {site: {pattern: '[a-z]+'}}}, ",
        ),
        False,
    ),
    # placeholder
    ("placeholder", steps("{id: r, rename_computer: {name: 'WEB-{site}'}}"), True),
    ("placeholder", steps("{id: r, rename_computer: {name: '{computer_name}'}}"), True),
    (
        "placeholder",
        steps("{id: r, rename_computer: {name: 'WEB-{site}'}}", extra="variables: {site: x}, "),
        False,
    ),
    ("placeholder", steps("{id: r, rename_computer: {name: 'WEB-{instance_id}'}}"), False),
    (
        "placeholder",
        steps(
            "{id: p, phone_home: {}}", "{id: r, rename_computer: {name: '{host}'}}", extra=PH + ", "
        ),
        False,
    ),
    # oobe-account
    ("oobe-account", "setup: {timezone: UTC}", True),  # Windows Server 2022 by default
    ("oobe-account", "image: {name: t, os: windows-server-2016}\nsetup: {locale: en-US}", True),
    ("oobe-account", "image: {name: t, os: windows-11}", True),
    ("oobe-account", "image: {name: t, os: windows-10}\nsetup: {accounts: []}", True),
    (
        "oobe-account",
        "image: {name: t, os: windows-server-2025}\nsetup: {accounts: [{name: ops}]}",
        True,  # Server asks for the administrator password even with a local account
    ),
    ("oobe-account", "setup: {administrator: {password: {env: P}}}", False),
    ("oobe-account", "image: {name: t, os: windows-11}\nsetup: {accounts: [{name: ops}]}", False),
    (
        "oobe-account",
        "image: {name: t, os: windows-10}\nsetup: {administrator: {password: {file: p}}}",
        False,
    ),
    # firewall-group
    ("firewall-group", "setup: {firewall_groups: {My App: true}}", True),
    ("firewall-group", "setup: {firewall_groups: {'@': true}}", True),
    (
        "firewall-group",
        "setup: {firewall_groups: {Remote Desktop: true, '@FirewallAPI.dll,-28752': false}}",
        True,
    ),
    ("firewall-group", "setup: {firewall_groups: {remote desktop: true}}", False),
    (
        "firewall-group",
        "setup: {firewall_groups: {Windows Remote Management: true, '@MyApp.dll,-1': true}}",
        False,
    ),
    # runtime
    ("runtime", "agent: {install_dir: 'C:\\vmprep'}", True),
    ("runtime", "setup: {timezone: UTC}", True),
    ("runtime", r"agent: {runtime: {python: 'C:\Python312\python.exe'}}", False),
    (
        "runtime",
        rf"agent: {{runtime: {{python: 'C:\Python312\python.exe', {EMB}}}}}",
        True,
    ),
    ("runtime", f"agent: {{runtime: {{{EMB}}}}}", False),
    # embedded-runtime (the zip itself: tests/spec/test_embedded.py)
    (
        "embedded-runtime",
        f"agent: {{install_dir: 'C:\\{'x' * 230}', runtime: {{{EMB}}}}}",
        True,
    ),
    ("embedded-runtime", f"agent: {{install_dir: 'C:\\vmprep', runtime: {{{EMB}}}}}", False),
    # timezone
    ("timezone", "setup: {timezone: Europe/Berlin}", True),
    ("timezone", "setup: {timezone: w. europe standard time}", True),
    ("timezone", "setup: {timezone: Mars Standard Time}", True),
    ("timezone", "setup: {timezone: W. Europe Standard Time}", False),
    ("timezone", "setup: {timezone: UTC}", False),
    ("timezone", "setup: {timezone: Pacific Standard Time_dstoff}", False),
    # locale
    ("locale", "setup: {locale: en_US}", True),
    ("locale", "setup: {locale: english}", True),
    ("locale", "setup: {locale: {ui: en-US, input: '0409'}}", True),
    ("locale", "setup: {locale: {ui: en-US, system: 'en US'}}", True),
    ("locale", "setup: {locale: en-US}", False),
    (
        "locale",
        "setup: {locale: {ui: sr-Latn-RS, user: es-419, input: '0409:00000409;de-DE'}}",
        False,
    ),
    # unique-step-ids
    ("unique-step-ids", steps("{id: a, reboot: {}}", "{id: A, reboot: {}}"), True),
    ("unique-step-ids", steps("{id: a, reboot: {}}", "{id: b, reboot: {}}"), False),
    # when
    ("when", steps("{id: a, reboot: {}, when: {role: web}}"), True),
    ("when", steps("{id: a, reboot: {}, when: {role: db}}", extra=PH + ", "), True),
    ("when", steps("{id: a, reboot: {}, when: {os: windows-7}}"), True),
    ("when", steps("{id: a, reboot: {}, when: {variables: {tier: gold}}}"), True),
    ("when", steps("{id: a, reboot: {}, when: {role: [db, web]}}", extra=PH + ", "), False),
    (
        "when",
        steps("{id: a, reboot: {}, when: {variables: {t: 1}}}", extra="variables: {t: 2}, "),
        False,
    ),
    (
        "when",
        steps(
            "{id: p, phone_home: {}}",
            "{id: a, reboot: {}, when: {variables: {t: 1}}}",
            extra=PH + ", ",
        ),
        False,
    ),
    ("when", steps("{id: a, reboot: {}, when: {os: [windows-server-2022, windows-11]}}"), False),
    # download
    (
        "download",
        steps(f"{{id: d, download: {{url: 'http://e.com/a', sha256: {SHA}, to: {PATH_OK}}}}}"),
        True,
    ),
    (
        "download",
        steps(f"{{id: d, download: {{url: 'ftp://e.com/a', sha256: {SHA}, to: {PATH_OK}}}}}"),
        True,
    ),
    (
        "download",
        steps(f"{{id: d, download: {{url: 'https:///a', sha256: {SHA}, to: {PATH_OK}}}}}"),
        True,
    ),
    (
        "download",
        steps(f"{{id: d, download: {{url: 'https://e.com/a', sha256: {SHA}, to: {PATH_OK}}}}}"),
        False,
    ),
    # phone-home-url
    ("phone-home-url", f"agent: {{{PH.replace('https', 'http')}}}", True),
    ("phone-home-url", f"agent: {{{PH.replace('{instance_id}', '{host}')}}}", True),
    ("phone-home-url", f"agent: {{{PH.replace('{instance_id}', '{role')}}}", True),
    ("phone-home-url", f"agent: {{{PH.replace('https://', 'https://u:p@')}}}", True),
    (
        "phone-home-url",
        f"agent: {{{PH[:-1]}, report_url: 'http://r.example.com/{{instance_id}}'}}}}",
        True,
    ),
    ("phone-home-url", f"agent: {{{PH}}}", False),
    ("phone-home-url", f"agent: {{{PH[:-1]}, metadata_url: 'http://10.0.0.1:8080'}}}}", True),
    (
        "phone-home-url",
        f"agent: {{{PH[:-1]}, url: ['https://a.example.com/{{mac}}', 'https://b.example.com/{{computer_name}}']}}}}".replace(
            "url: 'https://c.example.com/{role}/{instance_id}', ", ""
        ),
        False,
    ),
    # phone-home
    ("phone-home", steps("{id: p, phone_home: {}}"), True),
    (
        "phone-home",
        steps("{id: p, phone_home: {}}", "{id: q, phone_home: {}}", extra=PH + ", "),
        True,
    ),
    ("phone-home", steps("{id: p, phone_home: {}}", extra=PH + ", "), False),
    # trusted-key
    ("trusted-key", f"agent: {{{PH.replace(KEY, repr('ed25519:abc'))}}}", True),
    ("trusted-key", f"agent: {{{PH.replace(KEY, KEY.replace('ed25519', 'rsa'))}}}", True),
    ("trusted-key", f"agent: {{{PH.replace(KEY, KEY.replace('=', ''))}}}", True),  # no padding
    ("trusted-key", f"agent: {{{PH.replace(KEY, KEY + ', ' + KEY)}}}", True),
    ("trusted-key", f"agent: {{{PH}}}", False),
    # control-character
    ("control-character", r'agent: {variables: {a: "x\x1by"}}', True),
    ("control-character", steps(r'{id: c, cmd: "echo a\x1a"}'), True),
    ("control-character", steps(r'{id: e, exec: {argv: [x.exe, "a\nb"]}}'), True),
    ("control-character", steps(r'{id: e, exec: {argv: [x.exe, "a\x85b"]}}'), True),
    ("control-character", steps(r'{id: c, cmd: "echo a\r\n\techo b"}'), False),
    # download: the one URL rule, headers
    (
        "download",
        steps(
            f"{{id: d, download: {{url: 'https://xn--80ak6aa92e.com/a', sha256: {SHA}, to: {PATH_OK}}}}}"
        ),
        False,
    ),
    (
        "download",
        steps(f"{{id: d, download: {{url: 'https://аpple.com/a', sha256: {SHA}, to: {PATH_OK}}}}}"),
        True,
    ),
    (
        "download",
        steps(
            f"{{id: d, download: {{url: 'https://e.com/a', sha256: {SHA}, to: {PATH_OK}, headers: {{'X: y': z}}}}}}"
        ),
        True,
    ),
    (
        "download",
        steps(
            f"{{id: d, download: {{url: 'https://e.com/a', sha256: {SHA}, to: {PATH_OK}, headers: {{X-A: \"v\\r\\nB: c\"}}}}}}"
        ),
        True,
    ),
    # account-name, account-group, join-domain: identifiers Windows and AD parse
    (
        "account-name",
        "setup: {accounts: [{name: 'аdmin'}], administrator: {password: {env: P}}}",
        True,
    ),
    (
        "account-name",
        'setup: {accounts: [{name: "ad\\u200bmin"}], administrator: {password: {env: P}}}',
        True,
    ),
    (
        "account-name",
        "setup: {accounts: [{name: 'Jürgen'}], administrator: {password: {env: P}}}",
        False,
    ),
    (
        "account-group",
        "setup: {accounts: [{name: a, groups: ['Adm[1]']}], administrator: {password: {env: P}}}",
        True,
    ),
    (
        "account-group",
        "setup: {accounts: [{name: a, groups: ['Аdministrators']}], administrator: {password: {env: P}}}",
        True,
    ),
    (
        "join-domain",
        steps(
            "{id: j, join_domain: {domain: corp.example.com, ou: 'OU=Web\\,DC=evil,DC=com', credentials: remote}}",
            extra=PH + ", ",
        ),
        True,
    ),
    (
        "join-domain",
        steps(
            "{id: j, join_domain: {domain: corp.example.com, ou: 'OU=\"a,b\",DC=com', credentials: remote}}",
            extra=PH + ", ",
        ),
        True,
    ),
    (
        "join-domain",
        steps(
            "{id: j, join_domain: {domain: corp.example.com, ou: 'OU=a+CN=b,DC=com', credentials: remote}}",
            extra=PH + ", ",
        ),
        True,
    ),
    (
        "join-domain",
        steps(
            "{id: j, join_domain: {domain: ABCDEFGHIJKLMNOPQ, credentials: remote}}",
            extra=PH + ", ",
        ),
        True,
    ),
    # duration
    ("duration", steps("{id: r, reboot: {}, timeout: 1.0e+308}"), True),
    ("duration", steps("{id: r, reboot: {}, retry_delay: 99999d}"), True),
    ("duration", steps("{id: r, reboot: {}, timeout: 30m}"), False),
    # windows-path
    ("windows-path", "agent: {install_dir: vmprep}", True),
    ("windows-path", "agent: {install_dir: 'C:/ProgramData/vmprep'}", True),
    ("windows-path", r"agent: {install_dir: 'C:\ProgramData\vm|prep'}", True),
    ("windows-path", "agent: {runtime: {python: python.exe}}", True),
    (
        "windows-path",
        steps(f"{{id: d, download: {{url: 'https://e.com/a', sha256: {SHA}, to: a.msi}}}}"),
        True,
    ),
    ("windows-path", steps(r"{id: f, file: {path: '%TEMP%\x.txt', content: x}}"), True),
    ("windows-path", steps(r"{id: m, msi: {path: 'Tools\a.msi'}}"), True),
    ("windows-path", steps("{id: e, exec: {argv: [x], cwd: 'relative'}}"), True),
    ("windows-path", steps("{id: w, wait_for: {path: 'x.txt'}}"), True),
    ("windows-path", f"agent: {{{PH[:-1]}, ca_bundle: 'ca.pem'}}}}", True),
    ("windows-path", steps(r"{id: m, msi: {path: '\\srv\share\a.msi'}}"), False),
    ("windows-path", steps(r"{id: m, msi: {path: 'D:\Tools\a.msi'}}"), False),
    # cmd-unsafe-path
    ("cmd-unsafe-path", r"agent: {install_dir: 'C:\vm%prep%'}", True),
    ("cmd-unsafe-path", r"agent: {install_dir: 'C:\vm & co'}", True),
    ("cmd-unsafe-path", r"agent: {install_dir: 'C:\vm!prep'}", True),
    ("cmd-unsafe-path", r"agent: {runtime: {python: 'C:\Py^thon\python.exe'}}", True),
    ("cmd-unsafe-path", r"agent: {runtime: {python: 'C:\Müller\python.exe'}}", True),
    ("cmd-unsafe-path", r"agent: {runtime: {python: 'C:\a,b\python.exe'}}", True),
    ("windows-path", r"agent: {runtime: {python: '\\srv\share\python.exe'}}", True),
    ("cmd-unsafe-path", r"agent: {install_dir: 'D:\vmprep'}", True),
    (
        "cmd-unsafe-path",
        r"agent: {runtime: {python: 'C:\Program Files (x86)\Python 3\python.exe'}}",
        False,
    ),
    # os-architecture
    ("os-architecture", "image: {name: t, os: windows-server-2016, architecture: x86}", True),
    ("os-architecture", "image: {name: t, os: windows-11, architecture: x86}", True),
    ("os-architecture", "image: {name: t, os: windows-server-2022, architecture: arm64}", True),
    ("os-architecture", "image: {name: t, os: windows-10, architecture: x86}", False),
    ("os-architecture", "image: {name: t, os: windows-server-2025, architecture: arm64}", False),
    ("os-architecture", "image: {name: t, os: windows-11, architecture: arm64}", False),
    # reboot-budget
    ("reboot-budget", steps("{id: r, reboot: {}, reboot_budget: 0}"), True),
    ("reboot-budget", steps("{id: r, rename_computer: {name: WEB}, reboot_budget: 0}"), True),
    ("reboot-budget", steps("{id: r, reboot: {}, run: every_boot}"), True),
    ("reboot-budget", steps("{id: r, reboot: {}, reboot_budget: 20}"), True),  # a warning
    (
        "reboot-budget",
        steps("{id: r, reboot: {}}", "{id: p, powershell: x, reboot_budget: 0}"),
        False,
    ),
    # xml-characters
    ("xml-characters", r'setup: {organization: "Contoso\x01"}', True),
    ("xml-characters", r'setup: {accounts: [{name: a, description: "\x0b"}]}', True),
    ("xml-characters", r'setup: {owner: "\uFFFE"}', True),
    ("xml-characters", r'setup: {organization: "Tab\there, newline\n, émoji 😀"}', False),
    # first-logon-commands
    (
        "first-logon-commands",
        "setup: {auto_logon: {user: Administrator}, first_logon_commands: ["
        + "{command: x}, " * 500
        + "]}",
        True,
    ),
    (
        "first-logon-commands",
        "setup: {auto_logon: {user: Administrator, count: 2}, first_logon_commands: ["
        + "{command: x}, " * 500
        + "]}",
        False,
    ),
    (
        "first-logon-commands",
        "setup: {auto_logon: {user: Administrator}, first_logon_commands: ["
        + "{command: x}, " * 499
        + "]}",
        False,
    ),
    # account-name
    ("account-name", "setup: {accounts: [{name: a/b}]}", True),
    ("account-name", "setup: {accounts: [{name: NONE}]}", True),
    ("account-name", "setup: {accounts: [{name: deploy}, {name: Deploy}]}", True),
    ("account-name", steps("{id: u, local_user: {name: abcdefghijklmnopqrstu}}"), True),
    ("account-name", "setup: {accounts: [{name: deploy}, {name: ops}]}", False),
    # account-group
    ("account-group", "setup: {accounts: [{name: a, groups: ['Users;Administrators']}]}", True),
    ("account-group", "setup: {accounts: [{name: a, groups: [Users, Administrators]}]}", False),
    # auto-logon
    ("auto-logon", "setup: {auto_logon: {user: Administrator}}", True),
    ("auto-logon", "setup: {accounts: [{name: deploy}], auto_logon: {user: Deploy}}", True),
    ("auto-logon", "setup: {auto_logon: {user: bob, password: {env: P}}}", True),  # a warning
    (
        "auto-logon",
        "setup: {administrator: {password: {env: P}}, auto_logon: {user: administrator}}",
        False,
    ),
    (
        "auto-logon",
        "setup: {accounts: [{name: deploy, password: {env: P}}], auto_logon: {user: Deploy}}",
        False,
    ),
    # secret-in-image (warnings)
    ("secret-in-image", "setup: {administrator: {password: {env: P}}}", True),
    ("secret-in-image", "setup: {accounts: [{name: a, password: {file: pw.txt}}]}", True),
    ("secret-in-image", "setup: {auto_logon: {user: Administrator, password: {env: P}}}", True),
    ("secret-in-image", f"agent: {{{PH[:-1]}, token: {{env: T}}}}}}", True),
    ("secret-in-image", steps("{id: e, env: {name: X, value: {env: SECRET}}}"), True),
    (
        "download",
        steps(f"{{id: d, download: {{url: 'https://u:p@e.com/a', sha256: {SHA}, to: {PATH_OK}}}}}"),
        True,
    ),
    (
        "secret-in-image",
        steps(
            f"{{id: d, download: {{url: 'https://e.com/a', sha256: {SHA}, to: {PATH_OK}, headers: {{Authorization: Bearer x}}}}}}"
        ),
        True,
    ),
    (
        "secret-in-image",
        steps("{id: e, env: {name: X, value: {secret: s}}}", extra=PH + ", "),
        False,
    ),
    (
        "secret-in-image",
        steps(
            f"{{id: d, download: {{url: 'https://e.com/a', sha256: {SHA}, to: {PATH_OK}, headers: {{Accept: text/plain}}}}}}"
        ),
        False,
    ),
    # registry-value
    (
        "registry-value",
        steps(r"{id: r, registry: {key: 'HKLM\X', name: v, type: REG_DWORD, value: '1'}}"),
        True,
    ),
    (
        "registry-value",
        steps(r"{id: r, registry: {key: 'HKLM\X', name: v, type: REG_DWORD, value: 4294967296}}"),
        True,
    ),
    (
        "registry-value",
        steps(r"{id: r, registry: {key: 'HKLM\X', name: v, type: REG_SZ, value: 1}}"),
        True,
    ),
    (
        "registry-value",
        steps(r"{id: r, registry: {key: 'HKLM\X', name: v, type: REG_MULTI_SZ, value: a}}"),
        True,
    ),
    (
        "registry-value",
        steps(r"{id: r, registry: {key: 'HKLM\X', name: v, type: REG_BINARY, value: xyz}}"),
        True,
    ),
    (
        "registry-value",
        steps(r"{id: r, registry: {key: 'HKLM\X', name: v, type: REG_DWORD, value: {env: X}}}"),
        True,
    ),
    ("registry-value", steps(r"{id: r, registry: {key: 'HKLM\X', name: v}}"), True),
    (
        "registry-value",
        steps(r"{id: r, registry: {key: 'HKLM\X', name: v, type: REG_DWORD, value: 4294967295}}"),
        False,
    ),
    (
        "registry-value",
        steps(r"{id: r, registry: {key: 'HKLM\X', name: v, type: REG_MULTI_SZ, value: [a, b]}}"),
        False,
    ),
    (
        "registry-value",
        steps(r"{id: r, registry: {key: 'HKLM\X', name: v, type: REG_BINARY, value: 0a1B}}"),
        False,
    ),
    ("registry-value", steps(r"{id: r, registry: {key: 'HKLM\X', name: v, state: absent}}"), False),
    # join-domain
    (
        "join-domain",
        steps(
            "{id: j, join_domain: {domain: 'corp..example', credentials: remote}}", extra=PH + ", "
        ),
        True,
    ),
    (
        "join-domain",
        steps("{id: j, join_domain: {domain: '-corp', credentials: remote}}", extra=PH + ", "),
        True,
    ),
    (
        "join-domain",
        steps("{id: j, join_domain: {domain: corp, ou: '', credentials: remote}}", extra=PH + ", "),
        True,
    ),
    (
        "join-domain",
        steps(
            "{id: j, join_domain: {domain: corp, ou: 'Web Servers', credentials: remote}}",
            extra=PH + ", ",
        ),
        True,
    ),
    (
        "join-domain",
        steps(
            "{id: j, join_domain: {domain: corp.example.com, ou: 'OU=Web, DC=corp,DC=example,DC=com', credentials: remote}}",
            extra=PH + ", ",
        ),
        False,
    ),
    (
        "join-domain",
        steps("{id: j, join_domain: {domain: CORP, credentials: remote}}", extra=PH + ", "),
        False,
    ),
    # file-content
    (
        "file-content",
        steps(r"{id: f, file: {path: 'C:\x.bin', content: 'not base64!', encoding: base64}}"),
        True,
    ),
    (
        "file-content",
        steps(r"{id: f, file: {path: 'C:\x.bin', content: 'aGk', encoding: base64}}"),
        True,
    ),
    (
        "file-content",
        steps(r"{id: f, file: {path: 'C:\x.bin', content: 'aGk=', encoding: base64}}"),
        False,
    ),
    ("file-content", steps(r"{id: f, file: {path: 'C:\x.txt', content: 'not base64!'}}"), False),
    # env-self-reference, env-mode (#19)
    ("env-self-reference", steps(r"{id: e, env: {name: Path, value: '%Path%;C:\tools'}}"), True),
    ("env-self-reference", steps(r"{id: e, env: {name: PATH, value: 'C:\t;%path%'}}"), True),
    ("env-self-reference", steps(r"{id: e, env: {name: X, value: '%X%'}, }"), True),
    ("env-self-reference", steps(r"{id: e, env: {name: Path, value: '%PathExt%;C:\t'}}"), False),
    (
        "env-self-reference",
        steps(r"{id: e, env: {name: Path, value: 'C:\tools', mode: append}}"),
        False,
    ),
    ("env-mode", steps("{id: e, env: {name: Path, state: absent, mode: remove}}"), True),
    ("env-mode", steps("{id: e, env: {name: Path, mode: append}}"), True),
    ("env-mode", steps(r"{id: e, env: {name: Path, value: 'C:\t', mode: remove}}"), False),
    # cmd-code-page (#19)
    ("cmd-code-page", steps("{id: c, cmd: 'mkdir \"dir-日本\"'}"), True),
    ("cmd-code-page", steps("{id: c, cmd: 'mkdir \"dir-ünï\"'}"), False),
    ("cmd-code-page", steps("{id: c, cmd: 'echo ok'}"), False),
    (
        "cmd-code-page",
        "setup: {locale: {ui: en-US, system: ja-JP}}\n" + steps("{id: c, cmd: 'mkdir 日本'}"),
        False,
    ),
    (
        "cmd-code-page",
        "setup: {locale: ru-RU}\n" + steps("{id: c, cmd: 'mkdir ünï'}"),
        True,
    ),
    # wait-for
    ("wait-for", steps("{id: w, wait_for: {tcp: 'db:99999'}}"), True),
    ("wait-for", steps("{id: w, wait_for: {tcp: 'db:0'}}"), True),
    ("wait-for", steps("{id: w, wait_for: {http: 'localhost/health'}}"), True),
    ("wait-for", steps("{id: w, wait_for: {http: 'http://[::1/'}}"), True),
    ("wait-for", steps("{id: w, wait_for: {tcp: 'db:1433'}}"), False),
    ("wait-for", steps("{id: w, wait_for: {http: 'http://localhost:8080/health'}}"), False),
    # secret-ref
    ("secret-ref", "setup: {administrator: {password: {secret: admin}}}", True),
    ("secret-ref", f"agent: {{{PH[:-1]}, token: {{secret: t}}}}}}", True),
    ("secret-ref", steps("{id: e, env: {name: X, value: {secret: s}}}"), True),
    ("secret-ref", steps("{id: j, join_domain: {domain: corp, credentials: remote}}"), True),
    (
        "secret-ref",
        steps("{id: j, join_domain: {domain: corp, credentials: remote}}", extra=PH + ", "),
        True,
    ),  # not fetched yet
    (
        "secret-ref",
        steps(
            "{id: p, phone_home: {}}",
            "{id: j, join_domain: {domain: corp, credentials: remote}}",
            extra=PH + ", ",
        ),
        False,
    ),
    # RoleConfig only (vmprep/spec/rules_roles.py)
    ("ttl", ROLE + "ttl: 59s", True),
    ("ttl", ROLE + "ttl: 1m", False),
    ("attestation", ROLE + "attestation_allow: {accounts: ['123456789012']}", True),
    (
        "attestation",
        ROLE + "attestation: required\nattestation_allow: {accounts: ['123456789012']}",
        False,
    ),
    ("secret-reference", ROLE + "secrets: {pw: {secret: other}}", True),
    ("secret-reference", ROLE + "steps: [{id: e, env: {name: X, value: {env: HOME}}}]", True),
    ("secret-reference", ROLE + "secrets: {pw: {env: PW}}", False),
    (
        "undeclared-secret",
        ROLE + "steps: [{id: e, env: {name: X, value: {secret: pw}}}]\n"
        "instances: [{match: {name: 'WEB-*'}, secrets: {pw: {env: PW}}}]",
        True,
    ),
    (
        "undeclared-secret",
        ROLE + "instances: [{match: {name: 'WEB-*'}, secrets: {pw: {env: PW}}, "
        "steps: [{id: e, env: {name: X, value: {secret: pw}}}]}]",
        False,
    ),
]


def codes_of(fragment: str) -> dict[str, set[Severity]]:
    head = "version: 1\n" + ("" if fragment.startswith(("image:", ROLE)) else "image: {name: t}\n")
    found: dict[str, set[Severity]] = {}
    for p in check_bytes((head + fragment + "\n").encode(), "spec.yaml"):
        found.setdefault(p.code, set()).add(p.severity)
    assert not {"schema", "yaml", "unquoted-string"} & set(found), found
    return found


@pytest.mark.parametrize(("code", "fragment", "fires"), CASES)
def test_check(code, fragment, fires):
    assert (code in codes_of(fragment)) is fires


def test_every_registered_check_has_a_failing_and_a_passing_case():
    from vmprep.spec.checks import run_checks  # noqa: F401  (the rules register on first run)

    codes_of("setup: {}")
    for code in CHECKS:
        assert {fires for c, _, fires in CASES if c == code} == {True, False}, code


@pytest.mark.parametrize(
    ("fragment", "code"),
    [
        ("setup: {administrator: {password: {env: P}}}", "secret-in-image"),
        (
            f"agent: {{{PH.replace('https', 'http')[:-1]}, allow_insecure_http: true}}}}",
            "phone-home-url",
        ),
        (steps("{id: a, reboot: {}, when: {os: windows-11}}"), "when"),
        (steps("{id: r, reboot: {}, reboot_budget: 20}"), "reboot-budget"),
        ("setup: {auto_logon: {user: bob, password: {env: P}}}", "auto-logon"),
        ("agent: {install_dir: 'C:\\vmprep'}", "runtime"),
    ],
)
def test_findings_that_are_only_warnings(fragment, code):
    assert codes_of(fragment)[code] == {Severity.WARNING}


@pytest.mark.parametrize(
    "fragment",
    [
        steps("{id: e, env: {name: X, value: {secret: s}}}", extra=PH + ", "),
        steps(
            "{id: e, env: {name: X, value: {secret: s}}}",
            "{id: p, phone_home: {}}",
            extra=PH + ", ",
        ),
    ],
)
def test_a_delivered_secret_before_phone_home_is_an_error(fragment, problems):
    assert codes_of(fragment)["secret-ref"] == {Severity.ERROR}
    head = "version: 1\nimage: {name: t}\nsetup: {administrator: {password: {env: P}}}\n"
    (p,) = [p for p in problems(head + fragment + "\n") if p.is_error]
    assert p.message == "secret 's' is not there yet: baked steps run before phone-home"
    assert p.hint == "put a `phone_home: {}` step before this one"


def test_an_unknown_firewall_group_is_placed_with_the_known_names_as_hint(problems):
    admin = "administrator: {password: {env: P}}"
    text = f"version: 1\nimage: {{name: t}}\nsetup:\n  {admin}\n  firewall_groups:\n"
    (p,) = [
        p for p in problems(text + "    Remote Desktop: true\n    My App: true\n") if p.is_error
    ]
    assert (p.code, p.line, p.column) == ("firewall-group", 7, 13)
    assert p.message == "unknown firewall group 'My App'"
    assert p.hint is not None
    assert p.hint.startswith("use one of Core Networking, File and Printer Sharing,")
    assert "or a group id such as @FirewallAPI.dll,-28752" in p.hint


def test_an_unset_interpreter_is_a_warning_naming_the_key(problems):
    text = "version: 1\nimage: {name: t}\nsetup: {administrator: {password: {env: P}}}\n"
    (p,) = [
        p for p in problems(text + "agent:\n  install_dir: 'C:\\vmprep'\n") if p.code == "runtime"
    ]
    assert (p.severity, p.line, p.column) == (Severity.WARNING, 5, 3)
    assert p.message.startswith("agent.runtime.python is not set: render off Windows fails")
    assert p.hint == (
        "set agent.runtime.python to python.exe on the image, "
        "e.g. 'C:\\Program Files\\Python312\\python.exe', "
        "or bundle one with agent.runtime.embedded (docs/runtime.md)"
    )


def test_an_iana_zone_gets_its_windows_id_as_hint(problems):
    (p,) = problems(
        "version: 1\nimage: {name: t, os: windows-11}\n"
        "setup: {timezone: America/New_York, accounts: [{name: ops, groups: [Administrators]}]}\n"
        "agent: {runtime: {python: 'C:\\Python312\\python.exe'}}\n"
    )
    assert (p.code, p.line, p.column, p.hint) == (
        "timezone",
        3,
        19,
        "write 'Eastern Standard Time'",
    )


def test_baked_secrets_name_the_file_they_land_in(problems):
    found = problems(
        "version: 1\nimage: {name: t}\nsetup: {administrator: {password: {env: P}}}\n"
        r"agent: {install_dir: 'C:\agent', runtime: {python: 'C:\Python312\python.exe'},"
        r" steps: [{id: e, env: {name: X, value: {env: S}}}]}"
    )
    assert [p.message for p in found] == [
        (
            "the administrator password will be stored in C:\\Windows\\Panther\\unattend.xml"
            " inside the image (Base64, not encrypted)"
        ),
        "{env: S} will be stored in C:\\agent\\agent.json inside the image",
    ]
    assert all("phone-home" in (p.hint or "") for p in found)
