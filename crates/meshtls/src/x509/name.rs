//! Distinguished names: the `Name`s the CA writes and their RFC 4514 text for people.

use super::der::{self, Reader, oid, tag};

/// Go's choice of string type for a name attribute: PrintableString when every character is
/// in its alphabet, UTF8String otherwise.
fn directory_string(value: &str) -> Vec<u8> {
    let printable = value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b" '()+,-./:=?".contains(&b));
    let t = if printable {
        tag::PRINTABLE_STRING
    } else {
        tag::UTF8_STRING
    };
    der::tlv_vec(t, value.as_bytes())
}

/// A `Name` with `O=<organization>` and an optional `CN` (Go's attribute order: O before CN).
pub(crate) fn name(organization: &str, common_name: Option<&str>) -> Vec<u8> {
    let rdn = |attr_oid: &[u8], value: &str| {
        let atv = der::sequence(&[&der::tlv_vec(tag::OID, attr_oid), &directory_string(value)]);
        der::constructed(tag::SET, &[&atv])
    };
    let mut rdns = vec![rdn(oid::ORGANIZATION, organization)];
    if let Some(cn) = common_name {
        rdns.push(rdn(oid::COMMON_NAME, cn));
    }
    let parts: Vec<&[u8]> = rdns.iter().map(Vec::as_slice).collect();
    der::sequence(&parts)
}

fn short_name(attr: &[u8]) -> Option<&'static str> {
    Some(match attr {
        [0x55, 0x04, 0x03] => "CN",
        [0x55, 0x04, 0x05] => "serialNumber",
        [0x55, 0x04, 0x06] => "C",
        [0x55, 0x04, 0x07] => "L",
        [0x55, 0x04, 0x08] => "ST",
        [0x55, 0x04, 0x09] => "STREET",
        [0x55, 0x04, 0x0a] => "O",
        [0x55, 0x04, 0x0b] => "OU",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19] => "DC",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01] => "UID",
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01] => "emailAddress",
        _ => return None,
    })
}

/// The text of a string-typed attribute value, `None` for other types.
fn string_value(t: u8, v: &[u8]) -> Option<String> {
    match t {
        // UTF8String, PrintableString, IA5String, VisibleString, NumericString.
        0x0c | 0x13 | 0x16 | 0x1a | 0x12 => std::str::from_utf8(v).ok().map(str::to_owned),
        // TeletexString: read as Latin-1, as most implementations do.
        0x14 => Some(v.iter().map(|&b| char::from(b)).collect()),
        // BMPString: UTF-16BE.
        0x1e if v.len().is_multiple_of(2) => {
            let units: Vec<u16> = v
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        // UniversalString: UTF-32BE.
        0x1c if v.len().is_multiple_of(4) => v
            .chunks(4)
            .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        _ => None,
    }
}

fn escape(value: &str, out: &mut String) {
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, '"' | '+' | ',' | ';' | '<' | '>' | '\\')
            || (i == 0 && matches!(c, ' ' | '#'))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
            out.push(c);
        } else if c.is_control() {
            out.push_str(&format!("\\{:02x}", u32::from(c) & 0xff));
        } else {
            out.push(c);
        }
    }
}

/// RFC 4514 text of a `Name` given as its contents (the RDN sequence without the outer
/// header): last RDN first, `+` between the attributes of one RDN, short names where RFC 4514
/// has them, `#hex` for values that are not strings. Malformed input gives `None`.
pub(crate) fn rfc4514(content: &[u8]) -> Option<String> {
    let mut rdns = Vec::new();
    let mut r = Reader::new(content);
    while !r.is_empty() {
        let set = r.read(tag::SET).ok()?;
        let mut s = Reader::new(set);
        let mut atvs = Vec::new();
        while !s.is_empty() {
            let mut atv = Reader::new(s.read(tag::SEQUENCE).ok()?);
            let attr = atv.read(tag::OID).ok()?;
            let (t, v, whole) = atv.read_any().ok()?;
            atv.finish().ok()?;
            let mut text = short_name(attr).map_or_else(|| oid::dotted(attr), str::to_owned);
            text.push('=');
            match string_value(t, v) {
                Some(value) => escape(&value, &mut text),
                None => {
                    text.push('#');
                    for b in whole {
                        text.push_str(&format!("{b:02x}"));
                    }
                }
            }
            atvs.push(text);
        }
        rdns.push(atvs.join("+"));
    }
    rdns.reverse();
    Some(rdns.join(","))
}

/// [`rfc4514`] of a whole `Name` TLV.
pub(crate) fn rfc4514_der(whole: &[u8]) -> Option<String> {
    let mut r = Reader::new(whole);
    let content = r.read(tag::SEQUENCE).ok()?;
    r.finish().ok()?;
    rfc4514(content)
}

/// A `Name` (whole TLV) as rcgen's `DistinguishedName`, when rcgen can write it back byte for
/// byte: one attribute per RDN, each attribute type once, string values of a type rcgen
/// writes. `Err` says what rcgen cannot express.
pub(crate) fn to_rcgen(whole: &[u8]) -> Result<rcgen::DistinguishedName, String> {
    use rcgen::{DnType, DnValue};
    let mut outer = Reader::new(whole);
    let content = outer.read(tag::SEQUENCE).map_err(String::from)?;
    outer.finish().map_err(String::from)?;
    let mut dn = rcgen::DistinguishedName::new();
    let mut seen: Vec<Vec<u8>> = Vec::new();
    let mut r = Reader::new(content);
    while !r.is_empty() {
        let mut set = Reader::new(r.read(tag::SET).map_err(String::from)?);
        let mut atv = Reader::new(set.read(tag::SEQUENCE).map_err(String::from)?);
        if !set.is_empty() {
            return Err("a multi-valued RDN".to_owned());
        }
        let attr = atv.read(tag::OID).map_err(String::from)?;
        let (t, v, _) = atv.read_any().map_err(String::from)?;
        atv.finish().map_err(String::from)?;
        if seen.iter().any(|s| s == attr) {
            return Err(format!("attribute {} appears twice", oid::dotted(attr)));
        }
        seen.push(attr.to_vec());
        let ty = match attr {
            [0x55, 0x04, 0x03] => DnType::CommonName,
            [0x55, 0x04, 0x06] => DnType::CountryName,
            [0x55, 0x04, 0x07] => DnType::LocalityName,
            [0x55, 0x04, 0x08] => DnType::StateOrProvinceName,
            [0x55, 0x04, 0x0a] => DnType::OrganizationName,
            [0x55, 0x04, 0x0b] => DnType::OrganizationalUnitName,
            other => DnType::CustomDnType(
                oid::dotted(other)
                    .split('.')
                    .filter_map(|a| a.parse().ok())
                    .collect(),
            ),
        };
        let text = || {
            std::str::from_utf8(v)
                .map(str::to_owned)
                .map_err(|_| "an attribute value that is not valid text".to_owned())
        };
        let bad = |_| "an attribute value outside its string type".to_owned();
        let value = match t {
            tag::UTF8_STRING => DnValue::Utf8String(text()?),
            tag::PRINTABLE_STRING => DnValue::PrintableString(text()?.try_into().map_err(bad)?),
            0x16 => DnValue::Ia5String(text()?.try_into().map_err(bad)?),
            0x14 => DnValue::TeletexString(text()?.try_into().map_err(bad)?),
            other => return Err(format!("an attribute value of string type 0x{other:02x}")),
        };
        dn.push(ty, value);
    }
    Ok(dn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_or_utf8() {
        assert_eq!(directory_string("cluster.local")[0], tag::PRINTABLE_STRING);
        assert_eq!(directory_string("my_td")[0], tag::UTF8_STRING);
    }

    #[test]
    fn names_render_as_rfc4514() {
        let n = name("Istio", Some("Intermediate CA, #1"));
        let mut r = Reader::new(&n);
        let content = r.read(tag::SEQUENCE).unwrap();
        assert_eq!(
            rfc4514(content).unwrap(),
            "CN=Intermediate CA\\, #1,O=Istio"
        );
        assert_eq!(rfc4514(&[]).unwrap(), "");
        assert!(rfc4514(&[0x31, 0x05, 0x30]).is_none());
    }
}
