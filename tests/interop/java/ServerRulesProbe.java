// ServerRulesProbe: asks Apache ZooKeeper's own server classes (from the installed jar) about
// sessions and ACLs, one answer line per question line read from stdin.
//
// Part of zkquorum's test suite (differential tests of core/sessions.py and core/acl.py).
// Compiled at test time against the installed jar; calls ZooKeeper's classes, including the
// package-private ZooKeeperServer#generatePasswd through reflection.
//
// Every string in a question or an answer is "x" + hex-encoded UTF-8, so any text (the empty
// one too) survives; fields are separated by single spaces. Questions:
//   random SEED                 -> nextInt x3, nextLong, nextInt(1..4 bounds), nextBytes(7) hex
//   passwd ID                   -> hex of ZooKeeperServer#generatePasswd(ID)
//   nextid SID                  -> BEFORE ID AFTER (elapsed ms around initializeNextSessionId)
//   digest HEXTEXT              -> HEX(DigestAuthenticationProvider.generateDigest(text))
//   fixup NAUTH (S I)* NACL (P S I)*  -> INVALIDACL | OK (P S I)*   (PrepRequestProcessor#fixupACL)
//   check PERM NIDS (S I)* NACL (P S I)* -> OK | NOAUTH            (ZooKeeperServer#checkACL)
//   ipmatch HEXID HEXEXPR       -> true | false                   (IPAuthenticationProvider#matches)
//   hashset N HEX* M (+|- HEX)* -> HEX*   a HashSet filled with the N strings, cloned (as
//                                 DataTree#getEphemerals), then M adds/removes, iterated

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.common.Time;
import org.apache.zookeeper.data.ACL;
import org.apache.zookeeper.data.Id;
import org.apache.zookeeper.server.PrepRequestProcessor;
import org.apache.zookeeper.server.SessionTrackerImpl;
import org.apache.zookeeper.server.ZooKeeperServer;
import org.apache.zookeeper.server.auth.DigestAuthenticationProvider;
import org.apache.zookeeper.server.auth.IPAuthenticationProvider;

public final class ServerRulesProbe {

    private ServerRulesProbe() {
    }

    private static String hex(byte[] b) {
        StringBuilder sb = new StringBuilder();
        for (byte x : b) {
            sb.append(String.format("%02x", x & 0xff));
        }
        return sb.toString();
    }

    private static String hexText(String s) {
        return "x" + hex(s.getBytes(StandardCharsets.UTF_8));
    }

    private static String unhex(String text) {
        String h = text.substring(1);
        byte[] b = new byte[h.length() / 2];
        for (int i = 0; i < b.length; i++) {
            b[i] = (byte) Integer.parseInt(h.substring(2 * i, 2 * i + 2), 16);
        }
        return new String(b, StandardCharsets.UTF_8);
    }

    private static final class Cursor {
        final String[] parts;
        int pos = 1;

        Cursor(String[] parts) {
            this.parts = parts;
        }

        String next() {
            return parts[pos++];
        }

        List<Id> ids() {
            int n = Integer.parseInt(next());
            List<Id> out = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                out.add(new Id(unhex(next()), unhex(next())));
            }
            return out;
        }

        List<ACL> acls() {
            int n = Integer.parseInt(next());
            List<ACL> out = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                int perms = Integer.parseInt(next());
                out.add(new ACL(perms, new Id(unhex(next()), unhex(next()))));
            }
            return out;
        }
    }

    public static void main(String[] args) throws Exception {
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        ZooKeeperServer zks = new ZooKeeperServer();
        Method passwd = ZooKeeperServer.class.getDeclaredMethod("generatePasswd", long.class);
        passwd.setAccessible(true);
        IPAuthenticationProvider ip = new IPAuthenticationProvider();
        String line;
        while ((line = in.readLine()) != null) {
            String[] parts = line.split(" ");
            Cursor c = new Cursor(parts);
            switch (parts[0]) {
            case "random": {
                Random r = new Random(Long.parseLong(c.next()));
                StringBuilder sb = new StringBuilder();
                sb.append(r.nextInt()).append(' ').append(r.nextInt()).append(' ').append(r.nextInt());
                sb.append(' ').append(r.nextLong());
                for (int bound : new int[] {1, 7, 1 << 20, Integer.MAX_VALUE, 1000000007}) {
                    sb.append(' ').append(r.nextInt(bound));
                }
                byte[] b = new byte[7];
                r.nextBytes(b);
                sb.append(' ').append(hex(b));
                out.println(sb);
                break;
            }
            case "passwd":
                out.println(hex((byte[]) passwd.invoke(zks, Long.parseLong(c.next()))));
                break;
            case "nextid": {
                long sid = Long.parseLong(c.next());
                long before = Time.currentElapsedTime();
                long id = SessionTrackerImpl.initializeNextSessionId(sid);
                long after = Time.currentElapsedTime();
                out.println(before + " " + id + " " + after);
                break;
            }
            case "digest":
                out.println(hexText(DigestAuthenticationProvider.generateDigest(unhex(c.next()))));
                break;
            case "fixup": {
                List<Id> auth = c.ids();
                List<ACL> acls = c.acls();
                try {
                    List<ACL> fixed = PrepRequestProcessor.fixupACL("/probe", auth, acls);
                    StringBuilder sb = new StringBuilder("OK");
                    for (ACL a : fixed) {
                        sb.append(' ').append(a.getPerms()).append(' ').append(hexText(a.getId().getScheme()))
                            .append(' ').append(hexText(a.getId().getId()));
                    }
                    out.println(sb);
                } catch (KeeperException.InvalidACLException e) {
                    out.println("INVALIDACL");
                }
                break;
            }
            case "check": {
                int perm = Integer.parseInt(c.next());
                List<Id> ids = c.ids();
                List<ACL> acls = c.acls();
                try {
                    zks.checkACL(null, acls, perm, ids, "/probe", null);
                    out.println("OK");
                } catch (KeeperException.NoAuthException e) {
                    out.println("NOAUTH");
                }
                break;
            }
            case "hashset": {
                HashSet<String> original = new HashSet<>();
                int n = Integer.parseInt(c.next());
                for (int i = 0; i < n; i++) {
                    original.add(unhex(c.next()));
                }
                @SuppressWarnings("unchecked")
                HashSet<String> clone = (HashSet<String>) original.clone();
                int m = Integer.parseInt(c.next());
                for (int i = 0; i < m; i++) {
                    String sign = c.next();
                    String member = unhex(c.next());
                    if (sign.equals("+")) {
                        clone.add(member);
                    } else {
                        clone.remove(member);
                    }
                }
                StringBuilder sb = new StringBuilder("ORDER");
                for (String member : clone) {
                    sb.append(' ').append(hexText(member));
                }
                out.println(sb);
                break;
            }
            case "ipmatch":
                out.println(ip.matches(unhex(c.next()), unhex(c.next())));
                break;
            default:
                out.println("UNKNOWN " + parts[0]);
            }
        }
    }
}
