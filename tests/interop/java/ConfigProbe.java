// ConfigProbe: asks Apache ZooKeeper's own parser (QuorumPeerConfig, from the installed jar)
// what it makes of each zoo.cfg given on the command line, one JSON line per config.
//
// Part of zkquorum's test suite (differential test of the zoo.cfg parser). It only calls
// ZooKeeper's public API; it is compiled at test time against the installed jar.
//
// Usage: java -cp PROBE_DIR:zookeeper.jar ConfigProbe [-Dkey=value ...] CFG [-Dkey=value ...] CFG ...
// The -D items before a CFG are system properties set for that config only (for example
// -Dzookeeper.multiAddress.enabled=true). Between configs, every system property that the
// previous parse set (zoo.cfg's unknown keys become "zookeeper.<key>") is removed again,
// and the process-wide flags standaloneEnabled/reconfigEnabled are reset to their defaults.

import java.io.PrintStream;
import java.io.StringReader;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import org.apache.zookeeper.server.quorum.QuorumPeer.QuorumServer;
import org.apache.zookeeper.server.quorum.QuorumPeerConfig;
import org.apache.zookeeper.server.quorum.flexible.QuorumVerifier;

public final class ConfigProbe {

    private ConfigProbe() {
    }

    public static void main(String[] args) throws Exception {
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        Properties baseline = (Properties) System.getProperties().clone();
        Map<String, String> flags = new TreeMap<>();
        for (String arg : args) {
            if (arg.startsWith("-D")) {
                String kv = arg.substring(2);
                int eq = kv.indexOf('=');
                flags.put(eq < 0 ? kv : kv.substring(0, eq), eq < 0 ? "" : kv.substring(eq + 1));
                continue;
            }
            restore(baseline);
            for (Map.Entry<String, String> f : flags.entrySet()) {
                System.setProperty(f.getKey(), f.getValue());
            }
            QuorumPeerConfig.setStandaloneEnabled(true);
            QuorumPeerConfig.setReconfigEnabled(false);
            out.println(probe(arg, flags));
            flags.clear();
        }
        restore(baseline);
    }

    private static void restore(Properties baseline) {
        for (String key : new ArrayList<>(System.getProperties().stringPropertyNames())) {
            if (!baseline.containsKey(key)) {
                System.clearProperty(key);
            }
        }
        for (String key : baseline.stringPropertyNames()) {
            System.setProperty(key, baseline.getProperty(key));
        }
    }

    private static String probe(String path, Map<String, String> flags) {
        Json j = new Json();
        j.key("path").str(path);
        j.key("flags").open('{');
        for (Map.Entry<String, String> f : flags.entrySet()) {
            j.key(f.getKey()).str(f.getValue());
        }
        j.close('}');
        QuorumPeerConfig cfg = new QuorumPeerConfig();
        try {
            cfg.parse(path);
        } catch (Throwable t) {
            j.key("ok").raw("false");
            j.key("exception").str(t.getClass().getName());
            j.key("message").str(t.getMessage());
            Throwable cause = t.getCause();
            j.key("cause").str(cause == null ? null : cause.getClass().getName());
            j.key("cause_message").str(cause == null ? null : cause.getMessage());
            // QuorumPeerMain#main: ConfigException and IllegalArgumentException exit 2, the rest 1.
            boolean two = t instanceof QuorumPeerConfig.ConfigException
                || t instanceof IllegalArgumentException;
            j.key("exit_status").raw(two ? "2" : "1");
            return j.done();
        }
        j.key("ok").raw("true");
        j.key("myid").raw(Long.toString(cfg.getServerId()));
        j.key("distributed").raw(Boolean.toString(cfg.isDistributed()));
        j.key("standalone_enabled").raw(Boolean.toString(QuorumPeerConfig.isStandaloneEnabled()));
        j.key("reconfig_enabled").raw(Boolean.toString(QuorumPeerConfig.isReconfigEnabled()));
        j.key("multi_address_enabled").raw(Boolean.toString(cfg.isMultiAddressEnabled()));
        j.key("peer_type").str(String.valueOf(cfg.getPeerType()));
        j.key("tick_time").raw(Integer.toString(cfg.getTickTime()));
        j.key("init_limit").raw(Integer.toString(cfg.getInitLimit()));
        j.key("sync_limit").raw(Integer.toString(cfg.getSyncLimit()));
        j.key("data_dir").str(cfg.getDataDir() == null ? null : cfg.getDataDir().getPath());
        j.key("data_log_dir").str(cfg.getDataLogDir() == null ? null : cfg.getDataLogDir().getPath());
        j.key("client_port_address");
        addr(j, cfg.getClientPortAddress());
        QuorumVerifier qv = cfg.getQuorumVerifier();
        j.key("verifier");
        verifier(j, qv);
        j.key("last_seen_verifier");
        verifier(j, cfg.getLastSeenQuorumVerifier());
        j.key("unknown_keys_as_properties").open('{');
        for (String key : new TreeMap<>(propertiesSetSince(flags)).keySet()) {
            j.key(key).str(System.getProperty(key));
        }
        j.close('}');
        return j.done();
    }

    private static Map<String, String> propertiesSetSince(Map<String, String> flags) {
        Map<String, String> set = new HashMap<>();
        for (String key : System.getProperties().stringPropertyNames()) {
            if (key.startsWith("zookeeper.") && !flags.containsKey(key)) {
                set.put(key, System.getProperty(key));
            }
        }
        return set;
    }

    private static void verifier(Json j, QuorumVerifier qv) {
        if (qv == null) {
            j.raw("null");
            return;
        }
        j.open('{');
        j.key("class").str(qv.getClass().getSimpleName());
        j.key("version").raw(Long.toString(qv.getVersion()));
        String text = qv.toString();
        j.key("string").str(text);
        Properties p = new Properties();
        try {
            p.load(new StringReader(text));
        } catch (java.io.IOException e) {
            throw new IllegalStateException(e);
        }
        j.key("groups").open('{');
        for (String key : new TreeMap<Object, Object>(p).keySet().stream().map(Object::toString).toList()) {
            if (key.startsWith("group.")) {
                j.key(key.substring(6)).str(p.getProperty(key));
            }
        }
        j.close('}');
        j.key("weights").open('{');
        for (String key : new TreeMap<Object, Object>(p).keySet().stream().map(Object::toString).toList()) {
            if (key.startsWith("weight.")) {
                j.key(key.substring(7)).str(p.getProperty(key));
            }
        }
        j.close('}');
        j.key("voting").open('[');
        for (Long sid : new TreeMap<>(qv.getVotingMembers()).keySet()) {
            j.raw(Long.toString(sid));
        }
        j.close(']');
        j.key("observing").open('[');
        for (Long sid : new TreeMap<>(qv.getObservingMembers()).keySet()) {
            j.raw(Long.toString(sid));
        }
        j.close(']');
        j.key("servers").open('{');
        for (Map.Entry<Long, QuorumServer> e : new TreeMap<>(qv.getAllMembers()).entrySet()) {
            QuorumServer qs = e.getValue();
            j.key(Long.toString(e.getKey())).open('{');
            j.key("id").raw(Long.toString(qs.id));
            j.key("type").str(String.valueOf(qs.type));
            j.key("hostname").str(qs.hostname);
            List<InetSocketAddress> quorum = sorted(qs.addr.getAllAddresses());
            List<InetSocketAddress> election = sorted(qs.electionAddr.getAllAddresses());
            j.key("quorum").open('[');
            for (InetSocketAddress a : quorum) {
                addr(j, a);
            }
            j.close(']');
            j.key("election").open('[');
            for (InetSocketAddress a : election) {
                addr(j, a);
            }
            j.close(']');
            // Paired the way QuorumServer#toString pairs them: both lists sorted by host, zipped.
            j.key("addresses").open('[');
            for (int i = 0; i < Math.min(quorum.size(), election.size()); i++) {
                j.open('[');
                j.str(quorum.get(i).getHostString());
                j.raw(Integer.toString(quorum.get(i).getPort()));
                j.raw(Integer.toString(election.get(i).getPort()));
                j.close(']');
            }
            j.close(']');
            j.key("client");
            addr(j, qs.clientAddr);
            j.key("client_from_static").raw(Boolean.toString(qs.isClientAddrFromStatic));
            j.key("string").str(qs.toString());
            j.close('}');
        }
        j.close('}');
        j.close('}');
    }

    private static List<InetSocketAddress> sorted(java.util.Collection<InetSocketAddress> addrs) {
        List<InetSocketAddress> list = new ArrayList<>(addrs);
        list.sort(Comparator.comparing(InetSocketAddress::getHostString)
            .thenComparingInt(InetSocketAddress::getPort));
        return list;
    }

    private static void addr(Json j, InetSocketAddress a) {
        if (a == null) {
            j.raw("null");
            return;
        }
        j.open('[');
        j.str(a.getHostString());
        j.raw(Integer.toString(a.getPort()));
        j.close(']');
    }

    /** A minimal JSON writer (the JDK has none). */
    private static final class Json {
        private final StringBuilder sb = new StringBuilder("{");
        private boolean needComma = false;

        Json key(String k) {
            comma();
            quote(k);
            sb.append(':');
            needComma = false;
            return this;
        }

        Json open(char c) {
            comma();
            sb.append(c);
            needComma = false;
            return this;
        }

        Json close(char c) {
            sb.append(c);
            needComma = true;
            return this;
        }

        Json raw(String s) {
            comma();
            sb.append(s);
            needComma = true;
            return this;
        }

        Json str(String s) {
            comma();
            if (s == null) {
                sb.append("null");
            } else {
                quote(s);
            }
            needComma = true;
            return this;
        }

        String done() {
            return sb.append('}').toString();
        }

        private void comma() {
            if (needComma) {
                sb.append(',');
            }
        }

        private void quote(String s) {
            sb.append('"');
            for (int i = 0; i < s.length(); i++) {
                char c = s.charAt(i);
                switch (c) {
                    case '"': sb.append("\\\""); break;
                    case '\\': sb.append("\\\\"); break;
                    case '\n': sb.append("\\n"); break;
                    case '\r': sb.append("\\r"); break;
                    case '\t': sb.append("\\t"); break;
                    default:
                        if (c < 0x20) {
                            sb.append(String.format("\\u%04x", (int) c));
                        } else {
                            sb.append(c);
                        }
                }
            }
            sb.append('"');
        }
    }
}
