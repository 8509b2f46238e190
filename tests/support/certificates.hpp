// Test support: TLS certificates made by the `openssl` command line in a
// temp dir (a throwaway CA, leaves for 127.0.0.1 and localhost signed by it,
// odd files for the error cases), and running a shell command for its
// output. The e2e tests of TLS termination and of TLS to upstreams use them.
#pragma once

#include <doctest/doctest.h>
#include <sys/wait.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "support/process.hpp"

namespace userkey::test {

struct CommandResult {
  int status = -1;  ///< the shell's exit status
  std::string output;  ///< stdout and stderr
};

/// Runs `command` through the shell, output (stdout and stderr) captured.
inline CommandResult run_command(const std::string& command) {
  struct Closer {
    int* status;
    void operator()(FILE* f) const { *status = ::pclose(f); }
  };
  CommandResult r;
  int raw = -1;
  {
    std::unique_ptr<FILE, Closer> pipe(::popen(("(" + command + ") 2>&1").c_str(), "r"), Closer{&raw});
    if (!pipe) return r;
    char buf[4096];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, pipe.get())) > 0) r.output.append(buf, n);
  }
  r.status = raw >= 0 && WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return r;
}

/// `p` single-quoted for the shell.
inline std::string q(const std::filesystem::path& p) { return "'" + p.string() + "'"; }

// A CA and a leaf certificate for 127.0.0.1 and localhost signed by it (EC
// P-256: quick to make), the chain file the lb serves (leaf, then CA), and
// odd files for the error cases.
struct Certificates {
  TempDir dir;
  std::filesystem::path ca = dir.path() / "ca.pem";
  std::filesystem::path chain = dir.path() / "chain.pem";
  std::filesystem::path key = dir.path() / "leaf.key";
  std::filesystem::path other_key = dir.path() / "other.key";
  std::filesystem::path encrypted_key = dir.path() / "encrypted.key";
  std::filesystem::path garbage = dir.path() / "garbage.pem";
  // A second leaf from the same CA, for a certificate reload.
  std::filesystem::path chain2 = dir.path() / "chain2.pem";
  std::filesystem::path key2 = dir.path() / "leaf2.key";

  Certificates() {
    const auto d = dir.path();
    std::ofstream(d / "leaf.ext") << "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                                     "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n";
    std::ofstream(garbage) << "this is not PEM\n";
    const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    for (const std::string& cmd : {
             "openssl req -x509 " + ec + " -keyout " + q(d / "ca.key") + " -out " + q(ca) +
                 " -days 2 -subj '/CN=userkey test CA' -addext basicConstraints=critical,CA:TRUE"
                 " -addext keyUsage=critical,keyCertSign,cRLSign",
             "openssl req " + ec + " -keyout " + q(key) + " -out " + q(d / "leaf.csr") + " -subj /CN=localhost",
             "openssl x509 -req -in " + q(d / "leaf.csr") + " -CA " + q(ca) + " -CAkey " + q(d / "ca.key") +
                 " -set_serial 2 -days 2 -extfile " + q(d / "leaf.ext") + " -out " + q(d / "leaf.pem"),
             "cat " + q(d / "leaf.pem") + " " + q(ca) + " > " + q(chain),
             "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out " + q(other_key),
             "openssl pkey -in " + q(key) + " -aes256 -passout pass:secret -out " + q(encrypted_key),
             "openssl req " + ec + " -keyout " + q(key2) + " -out " + q(d / "leaf2.csr") + " -subj /CN=reloaded",
             "openssl x509 -req -in " + q(d / "leaf2.csr") + " -CA " + q(ca) + " -CAkey " + q(d / "ca.key") +
                 " -set_serial 3 -days 2 -extfile " + q(d / "leaf.ext") + " -out " + q(d / "leaf2.pem"),
             "cat " + q(d / "leaf2.pem") + " " + q(ca) + " > " + q(chain2),
         }) {
      const auto r = run_command(cmd);
      REQUIRE_MESSAGE(r.status == 0, cmd << "\n" << r.output);
    }
  }
  std::vector<std::string> lb_args(std::uint16_t tls_port) const {
    return {"--tls-listen", "127.0.0.1:" + std::to_string(tls_port), "--tls-cert", chain.string(), "--tls-key",
            key.string()};
  }
};

}  // namespace userkey::test
