//! nmap `-oX` output as a typed model, read in one streaming pass.
//!
//! This is the one nmap XML reader of the workspace: nweb scanprint
//! (`nweb::scanprint::from_nmap_xml`) and the loader's nmap toolchain
//! ([`super::parse_nmap`]) both build on it.
//!
//! Values are kept as nmap wrote them (strings), so each consumer decides what
//! a bad value means. The reader is a [`NmapXmlReader`] iterator of
//! [`NmapXmlEvent`]s in document order: a `<host>` is handed out when it is
//! complete, and problems are reported where they occur, so a consumer can
//! report them in input order. [`read_nmap_xml`] collects everything.
//!
//! A file cut short (nmap killed by a timeout) keeps every complete host; the
//! host being read is dropped with an error naming the line it started on.

use std::collections::VecDeque;
use std::fmt::Write as _;

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

/// `<nmaprun>`: how nmap was run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NmapRunInfo {
    pub line: usize,
    pub version: Option<String>,
    /// The command line, as nmap records it (may hold targets and paths).
    pub args: Option<String>,
    /// Unix seconds.
    pub start: Option<String>,
}

/// `<runstats><finished>`: whether nmap completed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NmapFinished {
    pub line: usize,
    /// `success` or `error`.
    pub exit: Option<String>,
    pub errormsg: Option<String>,
    pub elapsed: Option<String>,
}

/// One complete `<host>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NmapHost {
    /// Line of the `<host>` start tag.
    pub line: usize,
    pub starttime: Option<String>,
    pub endtime: Option<String>,
    /// `<status state>`: `up`, `down`, ...
    pub status: Option<String>,
    /// The first IPv4 and IPv6 `<address>` (MAC addresses are ignored).
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
    /// `<times srtt>` in microseconds.
    pub srtt_us: Option<String>,
    /// A `<ports>` element was present: nmap reported on the host's ports,
    /// even if every one of them went into `<extraports>`.
    pub has_ports: bool,
    pub ports: Vec<NmapPort>,
    /// `<hostscript>` results.
    pub scripts: Vec<NmapScript>,
}

impl NmapHost {
    /// The IPv4 address, else the IPv6 one, as written.
    pub fn address(&self) -> Option<&str> {
        self.ipv4.as_deref().or(self.ipv6.as_deref())
    }
}

/// One `<port>` (not `<os><portused>`, which is no port report).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NmapPort {
    pub line: usize,
    pub protocol: Option<String>,
    pub portid: Option<String>,
    /// `open`, `closed`, `filtered`, `open|filtered`, ...
    pub state: Option<String>,
    /// Why nmap decided the state: `syn-ack`, `conn-refused`, `no-response`, ...
    pub reason: Option<String>,
    pub service: Option<NmapService>,
    pub scripts: Vec<NmapScript>,
}

impl NmapPort {
    /// The last result of script `id` on this port (nmap writes each once).
    pub fn script(&self, id: &str) -> Option<&NmapScript> {
        self.scripts.iter().rev().find(|s| s.id.as_deref() == Some(id))
    }
}

/// `<service>`: what `-sV` (or the services table) says runs on the port.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NmapService {
    pub name: Option<String>,
    /// `ssl` when the service was found inside TLS.
    pub tunnel: Option<String>,
    pub product: Option<String>,
    pub version: Option<String>,
    pub extrainfo: Option<String>,
    /// `probed` (a probe response matched) or `table` (a guess from the
    /// port number alone).
    pub method: Option<String>,
    /// Confidence 0-10.
    pub conf: Option<String>,
}

/// One `<script>` result: its text output and its structured output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NmapScript {
    pub line: usize,
    pub id: Option<String>,
    /// The `output` attribute, entities resolved.
    pub output: Option<String>,
    /// The `<elem>` and `<table>` children (nmap 5.x writes none).
    pub data: ScriptTable,
}

/// A structured-output table: keyed or positional elems and tables, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScriptTable {
    pub entries: Vec<(Option<String>, ScriptValue)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptValue {
    Elem(String),
    Table(ScriptTable),
}

impl ScriptTable {
    /// The text of the last direct `<elem key="key">` child.
    pub fn elem(&self, key: &str) -> Option<&str> {
        self.entries.iter().rev().find_map(|(k, v)| match v {
            ScriptValue::Elem(s) if k.as_deref() == Some(key) => Some(s.as_str()),
            _ => None,
        })
    }

    /// The last direct `<table key="key">` child.
    pub fn table(&self, key: &str) -> Option<&ScriptTable> {
        self.entries.iter().rev().find_map(|(k, v)| match v {
            ScriptValue::Table(t) if k.as_deref() == Some(key) => Some(t),
            _ => None,
        })
    }

    /// Direct `<table>` children with their keys, in order.
    pub fn tables(&self) -> impl Iterator<Item = (Option<&str>, &ScriptTable)> {
        self.entries.iter().filter_map(|(k, v)| match v {
            ScriptValue::Table(t) => Some((k.as_deref(), t)),
            ScriptValue::Elem(_) => None,
        })
    }

    /// Direct `<elem>` children with their keys, in order.
    pub fn elems(&self) -> impl Iterator<Item = (Option<&str>, &str)> {
        self.entries.iter().filter_map(|(k, v)| match v {
            ScriptValue::Elem(s) => Some((k.as_deref(), s.as_str())),
            ScriptValue::Table(_) => None,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A problem at a 1-based line of the XML text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NmapXmlError {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for NmapXmlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// What the reader hands out, in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NmapXmlEvent {
    Run(NmapRunInfo),
    Host(NmapHost),
    Finished(NmapFinished),
    Error(NmapXmlError),
}

/// Everything in one nmap XML text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NmapXml {
    /// `None`: there is no `<nmaprun>`, so this is not nmap XML.
    pub run: Option<NmapRunInfo>,
    pub hosts: Vec<NmapHost>,
    /// `None` when nmap did not get to write its run statistics.
    pub finished: Option<NmapFinished>,
    pub errors: Vec<NmapXmlError>,
}

/// Reads a whole nmap XML text.
pub fn read_nmap_xml(xml: &str) -> NmapXml {
    let mut out = NmapXml::default();
    for ev in NmapXmlReader::new(xml) {
        match ev {
            NmapXmlEvent::Run(r) => out.run = Some(r),
            NmapXmlEvent::Host(h) => out.hosts.push(h),
            NmapXmlEvent::Finished(f) => out.finished = Some(f),
            NmapXmlEvent::Error(e) => out.errors.push(e),
        }
    }
    out
}

/// Turns 0-based byte offsets into 1-based line numbers, walking forward only.
struct LineCounter<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
}

impl LineCounter<'_> {
    fn at(&mut self, offset: u64) -> usize {
        let offset = usize::try_from(offset).unwrap_or(usize::MAX).min(self.text.len());
        if offset > self.pos {
            self.line += self.text.as_bytes()[self.pos..offset]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            self.pos = offset;
        }
        self.line
    }
}

/// The script being read, with the tables open inside it.
struct ScriptAcc {
    script: NmapScript,
    /// Open `<table>`s, innermost last.
    tables: Vec<(Option<String>, ScriptTable)>,
    /// The `<elem>` whose text is being collected.
    elem: Option<(Option<String>, String)>,
}

impl ScriptAcc {
    fn current(&mut self) -> &mut ScriptTable {
        match self.tables.last_mut() {
            Some((_, t)) => t,
            None => &mut self.script.data,
        }
    }
}

/// Streaming reader; see the module documentation.
pub struct NmapXmlReader<'a> {
    reader: Reader<&'a [u8]>,
    lines: LineCounter<'a>,
    queue: VecDeque<NmapXmlEvent>,
    done: bool,
    saw_nmaprun: bool,
    host: Option<NmapHost>,
    port: Option<NmapPort>,
    /// Inside `<hostscript>` of the current host.
    in_hostscript: bool,
    script: Option<ScriptAcc>,
}

impl<'a> NmapXmlReader<'a> {
    pub fn new(xml: &'a str) -> Self {
        NmapXmlReader {
            reader: Reader::from_str(xml),
            lines: LineCounter {
                text: xml,
                pos: 0,
                line: 1,
            },
            queue: VecDeque::new(),
            done: false,
            saw_nmaprun: false,
            host: None,
            port: None,
            in_hostscript: false,
            script: None,
        }
    }

    /// Whether an `<nmaprun>` element was seen so far. After the iterator
    /// is exhausted, `false` means the input is not nmap XML.
    pub fn saw_nmaprun(&self) -> bool {
        self.saw_nmaprun
    }

    fn error(&mut self, line: usize, message: impl Into<String>) {
        self.queue.push_back(NmapXmlEvent::Error(NmapXmlError {
            line,
            message: message.into(),
        }));
    }

    fn attr(&mut self, e: &BytesStart, name: &str, line: usize) -> Option<String> {
        match e.try_get_attribute(name) {
            Ok(Some(a)) => match a.normalized_value(XmlVersion::Implicit1_0) {
                Ok(v) => Some(v.into_owned()),
                Err(err) => {
                    self.error(line, format!("attribute {name}: {err}"));
                    None
                }
            },
            Ok(None) => None,
            Err(err) => {
                self.error(line, format!("attribute {name}: {err}"));
                None
            }
        }
    }

    /// Reads until something can be handed out or the input ends.
    fn fill(&mut self) {
        while self.queue.is_empty() && !self.done {
            let start = self.reader.buffer_position();
            let event = match self.reader.read_event() {
                Ok(ev) => ev,
                Err(e) => {
                    let line = self.lines.at(self.reader.error_position());
                    let mut problem = format!("XML error, reading stopped here: {e}");
                    if let Some(host) = self.host.take() {
                        let _ = write!(problem, "; the <host> from line {} was dropped", host.line);
                    }
                    self.error(line, problem);
                    self.done = true;
                    break;
                }
            };
            let line = self.lines.at(start);
            match event {
                Event::Start(e) => self.open(&e, line, false),
                Event::Empty(e) => self.open(&e, line, true),
                Event::End(e) => self.close(e.local_name().as_ref(), line),
                Event::Text(t) => self.text(&t.xml10_content()),
                Event::CData(t) => self.text(&t.xml10_content()),
                Event::GeneralRef(r) => {
                    let resolved = match r.resolve_char_ref() {
                        Ok(Some(c)) => Some(c.to_string()),
                        _ => resolve_predefined_entity(&r).map(str::to_owned),
                    };
                    if let Some(s) = resolved {
                        self.text(&s);
                    }
                }
                Event::Eof => {
                    if let Some(host) = self.host.take() {
                        self.error(host.line, "the input ends inside this <host>; its ports were not read");
                    }
                    self.done = true;
                }
                _ => {}
            }
        }
    }

    fn open(&mut self, e: &BytesStart, line: usize, empty: bool) {
        let name = e.local_name();
        let name = name.as_ref();
        match name {
            "nmaprun" => {
                self.saw_nmaprun = true;
                let run = NmapRunInfo {
                    line,
                    version: self.attr(e, "version", line),
                    args: self.attr(e, "args", line),
                    start: self.attr(e, "start", line),
                };
                self.queue.push_back(NmapXmlEvent::Run(run));
            }
            "finished" if self.host.is_none() => {
                let f = NmapFinished {
                    line,
                    exit: self.attr(e, "exit", line),
                    errormsg: self.attr(e, "errormsg", line),
                    elapsed: self.attr(e, "elapsed", line),
                };
                self.queue.push_back(NmapXmlEvent::Finished(f));
            }
            "host" => {
                let starttime = self.attr(e, "starttime", line);
                let endtime = self.attr(e, "endtime", line);
                self.host = Some(NmapHost {
                    line,
                    starttime,
                    endtime,
                    ..NmapHost::default()
                });
                self.port = None;
                self.script = None;
                self.in_hostscript = false;
            }
            "status" if self.host.is_some() && self.port.is_none() => {
                let state = self.attr(e, "state", line);
                if let Some(h) = self.host.as_mut() {
                    h.status = state;
                }
            }
            "address" if self.host.is_some() => {
                let addr = self.attr(e, "addr", line);
                let kind = self.attr(e, "addrtype", line);
                if let Some(h) = self.host.as_mut() {
                    match kind.as_deref() {
                        Some("ipv4") if h.ipv4.is_none() => h.ipv4 = addr,
                        Some("ipv6") if h.ipv6.is_none() => h.ipv6 = addr,
                        _ => {}
                    }
                }
            }
            "times" if self.host.is_some() && self.port.is_none() => {
                let srtt = self.attr(e, "srtt", line);
                if let Some(h) = self.host.as_mut() {
                    h.srtt_us = srtt;
                }
            }
            "ports" => {
                if let Some(h) = self.host.as_mut() {
                    h.has_ports = true;
                }
            }
            "hostscript" if self.host.is_some() => self.in_hostscript = !empty,
            "port" if self.host.is_some() => {
                let protocol = self.attr(e, "protocol", line);
                let portid = self.attr(e, "portid", line);
                self.port = Some(NmapPort {
                    line,
                    protocol,
                    portid,
                    ..NmapPort::default()
                });
            }
            "state" if self.port.is_some() => {
                let state = self.attr(e, "state", line);
                let reason = self.attr(e, "reason", line);
                if let Some(p) = self.port.as_mut() {
                    p.state = state;
                    p.reason = reason;
                }
            }
            "service" if self.port.is_some() => {
                let service = NmapService {
                    name: self.attr(e, "name", line),
                    tunnel: self.attr(e, "tunnel", line),
                    product: self.attr(e, "product", line),
                    version: self.attr(e, "version", line),
                    extrainfo: self.attr(e, "extrainfo", line),
                    method: self.attr(e, "method", line),
                    conf: self.attr(e, "conf", line),
                };
                if let Some(p) = self.port.as_mut() {
                    p.service = Some(service);
                }
            }
            "script" if self.port.is_some() || (self.host.is_some() && self.in_hostscript) => {
                let id = self.attr(e, "id", line);
                let output = self.attr(e, "output", line);
                self.script = Some(ScriptAcc {
                    script: NmapScript {
                        line,
                        id,
                        output,
                        data: ScriptTable::default(),
                    },
                    tables: Vec::new(),
                    elem: None,
                });
            }
            "table" if self.script.is_some() => {
                let key = self.attr(e, "key", line);
                if let Some(s) = self.script.as_mut() {
                    s.tables.push((key, ScriptTable::default()));
                }
            }
            "elem" if self.script.is_some() => {
                let key = self.attr(e, "key", line);
                if let Some(s) = self.script.as_mut() {
                    s.elem = Some((key, String::new()));
                }
            }
            _ => {}
        }
        if empty {
            self.close(name, line);
        }
    }

    fn text(&mut self, s: &str) {
        if let Some((_, text)) = self.script.as_mut().and_then(|sc| sc.elem.as_mut()) {
            text.push_str(s);
        }
    }

    fn close(&mut self, name: &str, _line: usize) {
        match name {
            "elem" => {
                if let Some(s) = self.script.as_mut() {
                    if let Some((key, text)) = s.elem.take() {
                        s.current().entries.push((key, ScriptValue::Elem(text)));
                    }
                }
            }
            "table" => {
                if let Some(s) = self.script.as_mut() {
                    if let Some((key, table)) = s.tables.pop() {
                        s.current().entries.push((key, ScriptValue::Table(table)));
                    }
                }
            }
            "script" => {
                if let Some(mut s) = self.script.take() {
                    // Tables left open by a malformed file still belong to the script.
                    while let Some((key, table)) = s.tables.pop() {
                        s.current().entries.push((key, ScriptValue::Table(table)));
                    }
                    if let Some(p) = self.port.as_mut() {
                        p.scripts.push(s.script);
                    } else if let Some(h) = self.host.as_mut() {
                        h.scripts.push(s.script);
                    }
                }
            }
            "hostscript" => self.in_hostscript = false,
            "port" => {
                self.script = None;
                if let (Some(p), Some(h)) = (self.port.take(), self.host.as_mut()) {
                    h.ports.push(p);
                }
            }
            "host" => {
                self.port = None;
                self.script = None;
                self.in_hostscript = false;
                if let Some(h) = self.host.take() {
                    self.queue.push_back(NmapXmlEvent::Host(h));
                }
            }
            _ => {}
        }
    }
}

impl Iterator for NmapXmlReader<'_> {
    type Item = NmapXmlEvent;

    fn next(&mut self) -> Option<NmapXmlEvent> {
        self.fill();
        self.queue.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const XML: &str = r#"<?xml version="1.0"?>
<nmaprun scanner="nmap" args="nmap -sV -p 22,443 192.0.2.1" start="1700000000" version="7.93">
<host starttime="1700000001" endtime="1700000009"><status state="up" reason="user-set"/>
<address addr="192.0.2.1" addrtype="ipv4"/>
<ports><extraports state="closed" count="1"/>
<port protocol="tcp" portid="443"><state state="open" reason="syn-ack" reason_ttl="0"/><service name="http" product="nginx" tunnel="ssl" method="probed" conf="10"><cpe>cpe:/a:nginx</cpe></service>
<script id="ssl-enum-ciphers" output="&#xa;  TLSv1.0: ..."><table key="TLSv1.0"><table key="ciphers"><table><elem key="name">TLS_RSA_WITH_AES_128_CBC_SHA</elem><elem key="strength">A</elem></table></table><table key="compressors"><elem>NULL</elem></table></table><elem key="least strength">A</elem></script>
<script id="http-title" output="x"><elem key="title">A &amp; B</elem></script>
</port>
</ports>
<hostscript><script id="smb-os" output="os"/></hostscript>
<times srtt="412" rttvar="5" to="100000"/>
</host>
<runstats><finished time="1700000009" elapsed="8.1" exit="success"/><hosts up="1" down="0" total="1"/></runstats>
</nmaprun>"#;

    #[test]
    fn a_complete_run_reads_into_the_typed_model() {
        let x = read_nmap_xml(XML);
        assert!(x.errors.is_empty(), "{:?}", x.errors);
        let run = x.run.unwrap();
        assert_eq!(
            (run.version.as_deref(), run.start.as_deref(), run.line),
            (Some("7.93"), Some("1700000000"), 2)
        );
        let f = x.finished.unwrap();
        assert_eq!(
            (f.exit.as_deref(), f.elapsed.as_deref()),
            (Some("success"), Some("8.1"))
        );
        assert_eq!(x.hosts.len(), 1);
        let h = &x.hosts[0];
        assert_eq!(
            (h.address(), h.status.as_deref(), h.srtt_us.as_deref()),
            (Some("192.0.2.1"), Some("up"), Some("412"))
        );
        assert!(h.has_ports);
        assert_eq!(h.scripts.len(), 1, "hostscript");
        let p = &h.ports[0];
        assert_eq!(
            (p.portid.as_deref(), p.state.as_deref(), p.reason.as_deref()),
            (Some("443"), Some("open"), Some("syn-ack"))
        );
        let s = p.service.as_ref().unwrap();
        assert_eq!(
            (s.tunnel.as_deref(), s.method.as_deref(), s.conf.as_deref()),
            (Some("ssl"), Some("probed"), Some("10"))
        );
        let enum_ = p.script("ssl-enum-ciphers").unwrap();
        assert_eq!(enum_.data.elem("least strength"), Some("A"));
        let v10 = enum_.data.table("TLSv1.0").unwrap();
        let first = v10.table("ciphers").unwrap().tables().next().unwrap().1;
        assert_eq!(first.elem("name"), Some("TLS_RSA_WITH_AES_128_CBC_SHA"));
        assert_eq!(
            v10.table("compressors").unwrap().elems().collect::<Vec<_>>(),
            vec![(None, "NULL")]
        );
        assert_eq!(enum_.output.as_deref(), Some("\n  TLSv1.0: ..."));
        assert_eq!(p.script("http-title").unwrap().data.elem("title"), Some("A & B"));
    }

    #[test]
    fn events_come_in_document_order() {
        let kinds: Vec<&str> = NmapXmlReader::new(XML)
            .map(|e| match e {
                NmapXmlEvent::Run(_) => "run",
                NmapXmlEvent::Host(_) => "host",
                NmapXmlEvent::Finished(_) => "finished",
                NmapXmlEvent::Error(_) => "error",
            })
            .collect();
        assert_eq!(kinds, vec!["run", "host", "finished"]);
    }

    #[test]
    fn a_cut_off_run_keeps_complete_hosts() {
        let cut = &XML[..XML.find("<runstats>").unwrap()];
        let second = cut.rfind("</host>").unwrap() + "</host>".len();
        let text = format!(
            "{}\n<host starttime=\"1\"><address addr=\"192.0.2.2\" addrtype=\"ipv4\"/><ports>",
            &cut[..second]
        );
        let x = read_nmap_xml(&text);
        assert_eq!(x.hosts.len(), 1);
        assert!(x.finished.is_none());
        assert_eq!(x.errors.len(), 1);
        let line = text[..text.rfind("<host ").unwrap()].matches('\n').count() + 1;
        assert_eq!(
            x.errors[0].to_string(),
            format!("line {line}: the input ends inside this <host>; its ports were not read")
        );
    }

    #[test]
    fn not_nmap_xml_has_no_run() {
        let mut r = NmapXmlReader::new("<html><body/></html>");
        assert!(r.by_ref().next().is_none());
        assert!(!r.saw_nmaprun());
        assert!(read_nmap_xml("").run.is_none());
    }
}
